//! The streaming record reader: MRT framing (RFC 6396 §2, §3) over any
//! `Read`, and opening files that may or may not be gzip-compressed.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::error::MrtError;
use super::record::{parse_record, MrtHeader, MrtRecord, ParseState};
use super::types as ty;

/// Largest record body accepted (64 MiB). Real records stay far below
/// (a BGP4MP record holds one message of at most 65535 bytes, RFC 8654; a
/// RIB record one prefix from every peer); the cap stops a corrupt length
/// field from making us buffer the rest of a huge file.
pub const MAX_RECORD_LENGTH: u32 = 64 << 20;

/// MRT common header size (RFC 6396 §2).
const HEADER_LEN: u64 = 12;

/// A file opened by [`MrtReader::open_gz`]: decompressed if it starts
/// with the gzip magic (RFC 1952 §2.3.1), read as is otherwise.
pub enum MrtFile {
    /// Gzip, possibly several members back to back (as `cat a.gz b.gz`).
    Gzip(MultiGzDecoder<File>),
    Plain(BufReader<File>),
}

impl Read for MrtFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MrtFile::Gzip(r) => r.read(buf),
            MrtFile::Plain(r) => r.read(buf),
        }
    }
}

/// Iterator over the records of an MRT stream.
///
/// Yields `Err` for a record that cannot be read; the error names its byte
/// offset in the (decompressed) stream. After a framing error (stream cut
/// short, read failure, impossible length) iteration ends; after a record
/// whose body does not parse, iteration goes on with the next record, since
/// the length field still frames it.
pub struct MrtReader<R: Read> {
    inner: R,
    offset: u64,
    done: bool,
    state: ParseState,
}

impl MrtReader<MrtFile> {
    /// Opens an MRT file, gzip-compressed or plain (detected by the gzip
    /// magic bytes `1f 8b`, not by the file name).
    pub fn open_gz(path: impl AsRef<Path>) -> Result<Self, MrtError> {
        let path = path.as_ref();
        let open_err = |source| MrtError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(open_err)?;
        let mut magic = [0u8; 2];
        let n = read_full(&mut file, &mut magic).map_err(open_err)?;
        file.seek(SeekFrom::Start(0)).map_err(open_err)?;
        let source = if n == 2 && magic == [0x1f, 0x8b] {
            MrtFile::Gzip(MultiGzDecoder::new(file))
        } else {
            MrtFile::Plain(BufReader::with_capacity(1 << 16, file))
        };
        Ok(MrtReader::new(source))
    }
}

impl<R: Read> MrtReader<R> {
    /// Reads MRT records from an already decompressed stream.
    pub fn new(inner: R) -> Self {
        MrtReader {
            inner,
            offset: 0,
            done: false,
            state: ParseState::default(),
        }
    }

    /// Bytes of the decompressed stream consumed so far: the offset of the
    /// next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn next_record(&mut self) -> Option<Result<MrtRecord, MrtError>> {
        let start = self.offset;
        let mut head = [0u8; HEADER_LEN as usize];
        let n = match read_full(&mut self.inner, &mut head) {
            Ok(n) => n,
            Err(source) => {
                self.done = true;
                return Some(Err(MrtError::Read {
                    offset: start,
                    source,
                }));
            }
        };
        if n == 0 {
            self.done = true;
            return None;
        }
        if n < head.len() {
            self.done = true;
            return Some(Err(MrtError::Truncated {
                offset: start,
                needed: HEADER_LEN,
                available: n as u64,
            }));
        }
        let [t0, t1, t2, t3, y0, y1, s0, s1, l0, l1, l2, l3] = head;
        let mut header = MrtHeader {
            offset: start,
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            microseconds: None,
            mrt_type: u16::from_be_bytes([y0, y1]),
            subtype: u16::from_be_bytes([s0, s1]),
            length: u32::from_be_bytes([l0, l1, l2, l3]),
        };
        let (mrt_type, subtype) = (header.mrt_type, header.subtype);
        let corrupt = move |reason: String| MrtError::Corrupt {
            offset: start,
            mrt_type,
            subtype,
            reason,
        };
        if header.length > MAX_RECORD_LENGTH {
            self.done = true;
            return Some(Err(corrupt(format!(
                "length {} exceeds the {MAX_RECORD_LENGTH}-byte limit",
                header.length
            ))));
        }
        let len = u64::from(header.length);
        // Grow the buffer as bytes arrive rather than trusting the length.
        let mut body = Vec::with_capacity(header.length.min(1 << 16) as usize);
        if let Err(source) = (&mut self.inner).take(len).read_to_end(&mut body) {
            self.done = true;
            return Some(Err(MrtError::Read {
                offset: start,
                source,
            }));
        }
        if (body.len() as u64) < len {
            self.done = true;
            return Some(Err(MrtError::Truncated {
                offset: start,
                needed: HEADER_LEN + len,
                available: HEADER_LEN + body.len() as u64,
            }));
        }
        self.offset = start + HEADER_LEN + len;

        // RFC 6396 §3: the _ET types carry microseconds first, counted in
        // the length.
        if header.mrt_type == ty::BGP4MP_ET {
            match body.get(..4) {
                Some(&[a, b, c, d]) => {
                    header.microseconds = Some(u32::from_be_bytes([a, b, c, d]));
                    body.drain(..4);
                }
                _ => return Some(Err(corrupt("no room for the microsecond field".into()))),
            }
        }
        Some(parse_record(header, body, &mut self.state).map_err(corrupt))
    }
}

impl<R: Read> Iterator for MrtReader<R> {
    type Item = Result<MrtRecord, MrtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_record()
    }
}

/// Fills `buf` as far as the stream allows; returns the bytes read, which
/// is less than `buf.len()` only at end of stream.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
