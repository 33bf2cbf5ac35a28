//! Typed async client for the Coffer wire API (the Akeyless-compatible
//! subset in `docs/api.md`).
//!
//! Every operation is `POST <base>/<operation>` with a JSON body; the
//! caller's token travels in the body. Use [`Client::call`] for any
//! operation by name, [`Client::send`] with a request type from [`ops`], or
//! the typed helpers (`get_secret_value`, `create_secret`, …).
//!
//! Tokens, access keys and secret values are held in
//! [`secrecy::SecretString`]; they never appear in `Debug` output or in
//! [`Error`] messages (an API error that echoes one back has it redacted).
//!
//! Redirects are never followed and plain `http://` is refused for any
//! host that is not loopback unless [`ClientOptions::allow_insecure_http`]
//! is set: see [`transport`].
//!
//! ```no_run
//! # async fn demo() -> coffer_client::Result<()> {
//! use coffer_client::{Client, ClientOptions, Token};
//! use secrecy::{ExposeSecret, SecretString};
//!
//! let client = Client::new("https://coffer.example:8200", ClientOptions::default())?;
//! let login = client
//!     .auth_access_key("p-abcdefghijal", &SecretString::from("…"))
//!     .await?;
//! let token = Token::Session(login.token);
//! let values = client.get_secret_value(&token, ["/app/db"], None).await?;
//! println!("{}", values.get("/app/db").unwrap().expose_secret());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod error;
pub mod ops;
mod token;
pub mod transport;
pub mod types;

pub use client::{
    Client, ClientOptions, DEFAULT_CLIENT_TYPE, check_base_url, decode, normalize_base_url,
};
pub use error::{API_URL_FORMS, Error, ErrorKind, Result};
pub use ops::Operation;
pub use token::Token;
pub use types::*;
