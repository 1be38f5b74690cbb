//! Identity for every gRPC port: who calls (a bearer JWT from the OpenID Connect provider,
//! verified against the issuer's JWKS) and what they may call (one permission table per
//! service, deny by default), plus the pieces around them — settings from the
//! environment, the server [`AuthLayer`], client-credentials tokens for calls between
//! services with the client-side [`BearerLayer`], and a development issuer for
//! `aftersales dev` and tests.
//!
//! A request body never grants anything: handlers take the [`Caller`] the layer put in
//! the request's extensions ([`Caller::of`]). Depends on `config` and `clock` of this
//! crate, `jsonwebtoken` (on aws-lc) for signatures, and `reqwest` for the provider's
//! discovery, JWKS and token endpoints; nothing here knows any business domain.

mod caller;
mod client;
mod dev;
mod error;
mod fetch;
mod keys;
mod layer;
mod permissions;
pub mod roles;
mod settings;
mod verifier;

pub use caller::{ALL_ROLES, Caller};
pub use client::{Bearer, BearerLayer, ClientCredentials, SecretSource, TokenError, TokenSource};
pub use dev::{DEV_TOKEN_TTL, DevClient, DevIssuer, DevIssuerError};
pub use error::{AuthError, SetupError};
pub use jsonwebtoken::{
    Algorithm,
    jwk::{Jwk, JwkSet},
};
pub use layer::{AuthLayer, AuthService};
pub use permissions::{Coverage, Permissions};
pub use settings::{AuthMode, AuthSettings, OidcSettings};
pub use verifier::{Verifier, VerifierBuilder};
