//! The partner gateway: authenticates partners and carriers, limits them, and forwards
//! their calls to dispatch and returns. It holds no business data. Two faces, gRPC
//! (`grpc`) and HTTP/JSON (`http`), share one core (`core`).

pub mod app;
pub mod auth;
pub mod carrier;
pub mod core;
pub mod error;
pub mod grpc;
pub mod http;
pub mod limiter;
pub mod mapping;
pub mod peer;
