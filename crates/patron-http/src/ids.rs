//! Opaque, per-club ids for the rows whose keys are integers: ledger entries (transfers),
//! coupon redemptions, and the RFV and CLV runs.
//!
//! Those keys come from sequences every club of the deployment shares, so handing them out as
//! they are would let one club count another's postings between two of its own. The store
//! keeps them (they are the ledger's order, and every query joins on them); the API shows
//! each one encrypted with a 64-bit block cipher (Speck64/128) under a key derived from the
//! club's secret (`tenants.id_key`, migration 0016) and the id's kind, behind the kind's
//! prefix: `txn_` and 16 hex digits. A permutation keeps every id unique and decodable
//! without a table; a key of each club's own makes the same integer read differently in two
//! clubs, and an id of one club decode, in another, to an integer that names nothing there.
//!
//! Every DTO field that carries one of these ids has one of the types below, which only
//! [`ClubIds`] makes: a response cannot show a raw key by forgetting to encode it.

use std::borrow::Cow;

use patron_engine::model::IdKey;
use serde::Serialize;
use sha2::{Digest, Sha256};
use speck_cipher::Speck64_128;
use speck_cipher::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// What an opaque id names; each kind has its prefix and its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A ledger entry (`transfers.id`).
    Transfer,
    /// A use of a coupon (`coupon_redemptions.id`).
    CouponRedemption,
    /// A run of the RFV scoring (`rfv_runs.id`).
    RfvRun,
    /// A fit of the lifetime-value models (`clv_runs.id`).
    ClvRun,
}

impl IdKind {
    const ALL: [IdKind; 4] = [
        IdKind::Transfer,
        IdKind::CouponRedemption,
        IdKind::RfvRun,
        IdKind::ClvRun,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Transfer => "txn",
            IdKind::CouponRedemption => "cpr",
            IdKind::RfvRun => "rfv",
            IdKind::ClvRun => "clv",
        }
    }

    fn index(self) -> usize {
        match self {
            IdKind::Transfer => 0,
            IdKind::CouponRedemption => 1,
            IdKind::RfvRun => 2,
            IdKind::ClvRun => 3,
        }
    }
}

/// The hex digits after the prefix and its underscore.
const DIGITS: usize = 16;

/// One club's encoder and decoder of opaque ids.
#[derive(Clone)]
pub struct ClubIds {
    ciphers: [Speck64_128; 4],
}

impl std::fmt::Debug for ClubIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClubIds(..)")
    }
}

impl ClubIds {
    /// The ids of the club whose secret is `key`. Each kind gets its own cipher key (SHA-256
    /// of a label, the kind and the secret), so that the ledger entry 7 and the coupon
    /// redemption 7 of one club do not read alike either.
    pub fn new(key: &IdKey) -> ClubIds {
        ClubIds {
            ciphers: IdKind::ALL.map(|kind| {
                let digest = Sha256::new()
                    .chain_update(b"patron opaque id v1\0")
                    .chain_update(kind.prefix().as_bytes())
                    .chain_update(b"\0")
                    .chain_update(key.as_bytes())
                    .finalize();
                let mut cipher_key = [0u8; 16];
                cipher_key.copy_from_slice(&digest[..16]);
                Speck64_128::new(&cipher_key.into())
            }),
        }
    }

    /// The id a client sees for the integer key `raw` of `kind`: the prefix, `_`, and 16
    /// lowercase hex digits.
    pub fn encode(&self, kind: IdKind, raw: i64) -> String {
        let mut block = raw.to_be_bytes().into();
        self.ciphers[kind.index()].encrypt_block(&mut block);
        format!("{}_{}", kind.prefix(), hex::encode(block))
    }

    /// The integer key behind `text`, if it is an id of `kind` in exactly the form
    /// [`ClubIds::encode`] makes. Any 16 hex digits decode: an id made for another club (or
    /// made up) decodes to an integer as good as random, which names one of this club's rows
    /// with a chance of rows / 2^64, so the caller answers as for an unknown id.
    pub fn decode(&self, kind: IdKind, text: &str) -> Option<i64> {
        let digits = text
            .strip_prefix(kind.prefix())
            .and_then(|rest| rest.strip_prefix('_'))
            .filter(|digits| {
                digits.len() == DIGITS
                    && digits
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })?;
        let bytes: [u8; 8] = hex::decode(digits).ok()?.try_into().ok()?;
        let mut block = bytes.into();
        self.ciphers[kind.index()].decrypt_block(&mut block);
        let bytes: [u8; 8] = block.into();
        Some(i64::from_be_bytes(bytes))
    }

    pub fn transfer(&self, raw: i64) -> TransferId {
        TransferId(self.encode(IdKind::Transfer, raw))
    }

    pub fn coupon_redemption(&self, raw: i64) -> CouponRedemptionId {
        CouponRedemptionId(self.encode(IdKind::CouponRedemption, raw))
    }

    pub fn rfv_run(&self, raw: i64) -> RfvRunId {
        RfvRunId(self.encode(IdKind::RfvRun, raw))
    }

    pub fn clv_run(&self, raw: i64) -> ClvRunId {
        ClvRunId(self.encode(IdKind::ClvRun, raw))
    }
}

/// The id types of the DTOs: a string on the wire, described in the OpenAPI document with its
/// prefix, and made only by [`ClubIds`].
macro_rules! opaque_id {
    ($name:ident, $prefix:literal, $example:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(concat!(
                        $doc,
                        " Opaque: compare it whole, do not parse it."
                    )))
                    .pattern(Some(concat!("^", $prefix, "_[0-9a-f]{16}$")))
                    .examples([serde_json::Value::from($example)])
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

opaque_id!(
    TransferId,
    "txn",
    "txn_5c1e8a03f97b2d64",
    "A ledger entry of the club."
);
opaque_id!(
    CouponRedemptionId,
    "cpr",
    "cpr_0d7f42b9e8a1c356",
    "A use of a coupon."
);
opaque_id!(
    RfvRunId,
    "rfv",
    "rfv_9a3b6e0c2f184d57",
    "A run of the RFV scoring."
);
opaque_id!(
    ClvRunId,
    "clv",
    "clv_e2c4079b5a6f13d8",
    "A fit of the lifetime-value models."
);

/// How an engine value becomes its DTO: through `From` when the DTO carries no opaque id,
/// with the club's [`ClubIds`] when it does.
pub trait Present<T>: Sized {
    fn present(value: T, ids: &ClubIds) -> Self;
}

impl<T, D: From<T>> Present<T> for D {
    fn present(value: T, _ids: &ClubIds) -> D {
        D::from(value)
    }
}
