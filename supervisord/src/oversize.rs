//! A tower layer that reports an over-sized request as `ResourceExhausted`, as containerd
//! (grpc-go) does, instead of tonic's `OutOfRange`.
//!
//! tonic rejects a request message above the decode limit before the handler runs and
//! answers with a trailers-only response; this layer rewrites the `grpc-status` header of
//! exactly that response. Every other response passes through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http::{self, HeaderMap, HeaderValue};

/// The layer; add it with `Server::builder().layer(OversizeLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OversizeLayer;

impl<S> tower::Layer<S> for OversizeLayer {
    type Service = Oversize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Oversize(inner)
    }
}

/// The service the layer wraps around the routes.
#[derive(Debug, Clone)]
pub struct Oversize<S>(S);

impl<S, B, R> tower::Service<http::Request<B>> for Oversize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            remap(res.headers_mut());
            Ok(res)
        })
    }
}

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// Rewrite tonic's "decoded message length too large" OutOfRange to ResourceExhausted.
pub fn remap(headers: &mut HeaderMap) {
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == OUT_OF_RANGE.as_bytes());
    let too_large = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.contains("decoded%20message%20length%20too%20large"));
    if out_of_range && too_large {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(status: &'static str, msg: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static(status));
        h.insert("grpc-message", HeaderValue::from_static(msg));
        h
    }

    #[test]
    fn only_the_decode_limit_error_is_rewritten() {
        let mut h = headers(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%2017%20bytes",
        );
        remap(&mut h);
        assert_eq!(
            h.get("grpc-status").map(HeaderValue::as_bytes),
            Some(&b"8"[..])
        );

        let mut other = headers("11", "offset%20out%20of%20range");
        remap(&mut other);
        assert_eq!(
            other.get("grpc-status").map(HeaderValue::as_bytes),
            Some(&b"11"[..])
        );

        let mut not_found = headers("5", "decoded%20message%20length%20too%20large");
        remap(&mut not_found);
        assert_eq!(
            not_found.get("grpc-status").map(HeaderValue::as_bytes),
            Some(&b"5"[..])
        );
    }
}
