//! Lab runner: network namespaces, veth links, BIRD and via6d processes.
