//! Prometheus metrics over HTTP (`GET /metrics`): hyper serves the page,
//! [`page`] writes it with `prometheus-client` from the typed status the
//! control socket serves too.

mod page;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::debug;

use crate::daemon::Parts;

pub use page::render;

/// The Prometheus text format; its parsers skip the `# EOF` line
/// prometheus-client ends the page with.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A client that has not sent a whole request head by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub async fn serve(listener: TcpListener, parts: Arc<Parts>) {
    serve_page(listener, move || {
        let parts = parts.clone();
        async move { render(&parts).await }
    })
    .await
}

/// Serves whatever `page` renders, one render per request.
async fn serve_page<F, Fut>(listener: TcpListener, page: F)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                debug!(error = %e, "metrics: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let page = page.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let page = page.clone();
                async move { Ok::<_, Infallible>(answer(&request, page).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                // `Content-Type`, as scrapers and people reading with
                // curl expect to see it.
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                debug!(error = %e, "metrics: connection ended with an error");
            }
        });
    }
}

/// `GET /metrics` (or `/`) gets the page; anything else 404 or 405.
async fn answer<F, Fut>(request: &Request<Incoming>, page: F) -> Response<Full<Bytes>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = String>,
{
    let path = request.uri().path();
    if path != "/metrics" && path != "/" {
        return status_only(StatusCode::NOT_FOUND);
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return status_only(StatusCode::METHOD_NOT_ALLOWED);
    }
    let mut response = Response::new(Full::new(Bytes::from(page().await)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sends `request` raw, half-closes, and returns the whole answer.
    async fn exchange(request: &str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_page(listener, || async {
            "a_metric 1\n".to_string()
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer))
            .await
            .expect("the server answers and closes")
            .unwrap();
        server.abort();
        answer
    }

    #[tokio::test]
    async fn the_page_is_served_with_its_content_type() {
        let a = exchange("GET /metrics HTTP/1.0\r\n\r\n").await;
        assert!(a.starts_with("HTTP/1.0 200 OK\r\n"), "{a}");
        assert!(
            a.contains("\r\nContent-Type: text/plain; version=0.0.4"),
            "{a}"
        );
        assert!(a.ends_with("\r\n\r\na_metric 1\n"), "{a}");
    }

    #[tokio::test]
    async fn other_paths_and_methods_are_refused() {
        let a = exchange("GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").await;
        assert!(a.starts_with("HTTP/1.1 404 Not Found\r\n"), "{a}");
        let a = exchange(
            "POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        )
        .await;
        assert!(a.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{a}");
    }

    /// A long request head, as browsers send, still gets its answer
    /// (the old responder read one 2 KB buffer).
    #[tokio::test]
    async fn a_long_request_head_gets_the_page() {
        let cookie = "x".repeat(6000);
        let a = exchange(&format!(
            "GET /metrics HTTP/1.1\r\nHost: h\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ))
        .await;
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.ends_with("a_metric 1\n"), "{a}");
    }
}
