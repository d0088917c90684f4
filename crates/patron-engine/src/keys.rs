//! API keys: made here, shown once, stored as a SHA-256 hash (the secrets are 256 random
//! bits, so a fast hash is enough: nothing to brute-force), each bound to one tenant and one
//! scope.

use patron_store::api_keys::ApiKey;
use patron_store::tenants::Tenant;
use sha2::{Digest, Sha256};

use crate::{Engine, EngineError};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything.
    Admin,
    /// What a till or a web shop needs: purchases, refunds, member look-up and enrollment,
    /// coupons.
    Pos,
    /// GET only.
    Read,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Pos => "pos",
            Scope::Read => "read",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "admin" => Some(Scope::Admin),
            "pos" => Some(Scope::Pos),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }
}

/// Every key starts with this, so secret scanners and people recognise it.
pub const KEY_PREFIX: &str = "ptk_";
/// Characters of a key kept in clear to recognise it in lists.
pub const KEY_SHOWN_CHARS: usize = 12;

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

impl Engine {
    /// Creates a key; the secret is returned here and never again.
    pub async fn create_api_key(
        &self,
        tenant: &Tenant,
        scope: Scope,
        name: &str,
        actor: &str,
    ) -> Result<(ApiKey, String), EngineError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(EngineError::invalid(
                "name",
                "must be 1 to 100 printable characters",
            ));
        }
        let secret = new_secret();
        let prefix: String = secret.chars().take(KEY_SHOWN_CHARS).collect();
        let key = self
            .store()
            .create_api_key(
                tenant.id,
                name,
                &prefix,
                &hash_secret(&secret),
                scope.as_str(),
                actor,
                self.now(),
            )
            .await?;
        Ok((key, secret))
    }

    /// The key and tenant a presented secret belongs to, if it is a live key.
    pub async fn authenticate(
        &self,
        secret: &str,
    ) -> Result<Option<(ApiKey, Tenant, Scope)>, EngineError> {
        if !secret.starts_with(KEY_PREFIX) || secret.len() > 200 {
            return Ok(None);
        }
        let found = self
            .store()
            .authenticate_api_key(&hash_secret(secret))
            .await?;
        Ok(found
            .and_then(|(key, tenant)| Scope::parse(&key.scope).map(|scope| (key, tenant, scope))))
    }
}
