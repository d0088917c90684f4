//! PostgreSQL over TLS: the database URL's libpq parameters (`sslmode`, `sslrootcert`) are
//! honoured, the connection is encrypted, and a server certificate that does not verify is
//! refused before anything is sent. Runs against the test server (`PATRON_TEST_POSTGRES_URL`,
//! a server on this machine: the verifying cases connect to it as `localhost`), whose `ssl`
//! setting must be on (Debian's PostgreSQL packages turn it on with a self-signed certificate
//! for `localhost`).

use patron_store::testing::{self, POSTGRES_URL_VAR};
use patron_store::{Store, StoreOptions};
use sqlx::Row;

use crate::support::{COFFEE, club_on};

/// The test server's URL with `host` and extra query parameters.
fn with(url: &str, host: Option<&str>, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(url).unwrap();
    if let Some(host) = host {
        url.set_host(Some(host)).unwrap();
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("ssl"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (k, v) in &kept {
            query.append_pair(k, v);
        }
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    url.to_string()
}

/// The server's certificate file, when the server has TLS on and the file is readable here;
/// otherwise why not.
async fn server_certificate(url: &str) -> Result<String, String> {
    let store = Store::connect(
        &with(url, None, &[("sslmode", "disable")]),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    let ssl: String = sqlx::query("SHOW ssl")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    let file: String = sqlx::query("SHOW ssl_cert_file")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    store.close().await;
    if ssl != "on" {
        return Err(format!("the server at {url} has ssl = {ssl}"));
    }
    std::fs::metadata(&file)
        .map(|_| file.clone())
        .map_err(|e| format!("its certificate {file} is not readable here: {e}"))
}

async fn encrypted(store: &Store) -> bool {
    sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<bool, _>(0)
}

#[tokio::test]
async fn postgres_connections_are_encrypted_and_verify_the_server_certificate() {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        // The suite's one `skipped:` line for PostgreSQL says how to enable it.
        return;
    };
    let certificate = match server_certificate(&url).await {
        Ok(file) => file,
        Err(why) => {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!in_ci, "CI must run the TLS test: {why}");
            eprintln!(
                "skipped: PostgreSQL TLS test ({why}; set ssl = on with a certificate to enable it)"
            );
            return;
        }
    };

    // sslmode=require: encrypted, and the ledger works over it.
    let db = testing::postgres_at(&with(&url, None, &[("sslmode", "require")])).await;
    assert!(encrypted(&db.store).await, "sslmode=require is encrypted");
    let club = club_on(db, &COFFEE).await;
    let member = club.enroll("tls-1").await;
    let receipt = club
        .engine
        .post_purchase(
            &club.tenant,
            &club.purchase("tls-doc-1", Some(&member), 1000, "USD"),
            None,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(receipt.points, 20);
    club.verify().await;
    club.db.cleanup().await;

    // The server's own (self-signed) certificate as the root, and the name it was made for
    // (Debian's is for `localhost`): accepted by both verifying modes.
    for mode in ["verify-ca", "verify-full"] {
        let verified = Store::connect(
            &with(
                &url,
                Some("localhost"),
                &[("sslmode", mode), ("sslrootcert", &certificate)],
            ),
            StoreOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(encrypted(&verified).await, "{mode} is encrypted");
        verified.close().await;
    }

    // verify-full to an address the certificate does not name: refused, with the reason.
    let refused = Store::connect(
        &with(
            &url,
            Some("127.0.0.1"),
            &[("sslmode", "verify-full"), ("sslrootcert", &certificate)],
        ),
        StoreOptions::default(),
    )
    .await
    .expect_err("a certificate for another name is refused");
    let message = refused.to_string().to_lowercase();
    assert!(
        message.contains("certificate") || message.contains("tls"),
        "the error says why: {refused}"
    );

    // A root that did not sign the server's certificate: refused too.
    let stranger = std::env::temp_dir().join(format!("patron-tls-{}.pem", std::process::id()));
    std::fs::write(&stranger, STRANGER_CA).unwrap();
    let refused = Store::connect(
        &with(
            &url,
            Some("localhost"),
            &[
                ("sslmode", "verify-ca"),
                ("sslrootcert", stranger.to_str().unwrap()),
            ],
        ),
        StoreOptions::default(),
    )
    .await;
    let _ = std::fs::remove_file(&stranger);
    assert!(refused.is_err(), "an unknown issuer is refused");
}

/// A self-signed CA certificate made for this test (`openssl req -x509 -newkey ec -pkeyopt
/// ec_paramgen_curve:prime256v1 -subj /CN=patron-test-stranger -days 36500`); its key was
/// thrown away. It signed nothing the server has.
const STRANGER_CA: &str = "\
-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUJcNaOOX77a+qorBu+OvQKaIVun4wCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUcGF0cm9uLXRlc3Qtc3RyYW5nZXIwIBcNMjYxMjA0MjAzMDI0
WhgPMjEyNjExMTAyMDMwMjRaMB8xHTAbBgNVBAMMFHBhdHJvbi10ZXN0LXN0cmFu
Z2VyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAMmcfpip7qv9+N2T5e2ABq7D
FJCSKInioQAfn+WmFEuOhctBo9Y26TMW07cRTzFOu/ciV9JMIB7tjjecTMv2eqNT
MFEwHQYDVR0OBBYEFNUzv9/szzIfQeed6PWmxVUNm4mzMB8GA1UdIwQYMBaAFNUz
v9/szzIfQeed6PWmxVUNm4mzMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SAAwRQIgUkSWTySTGKPN9eEAqI2MndG6PPloubNh+fqHuz52u1wCIQD+c5gAh1WL
kdrevApnDL+aEMwd+kEJ/BCPbuVrSNPwVA==
-----END CERTIFICATE-----
";
