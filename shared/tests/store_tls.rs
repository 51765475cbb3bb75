//! TLS to PostgreSQL on a real server with a certificate from a test CA: the right CA connects,
//! a wrong CA or a wrong host name is refused, and `sslmode=require` refuses a server without TLS.

use localstack::postgres::Postgres;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use shared::store::connect::DbConfig;
use shared::store::Store;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca() -> anyhow::Result<Ca> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate()?;
    Ok(Ca { cert: params.self_signed(&key)?, key })
}

fn server_cert(ca: &Ca, names: &[&str]) -> anyhow::Result<(String, String)> {
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.cert, &ca.key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn config(pg: &Postgres, host: &str, sslmode: &str, ca: Option<&Ca>) -> DbConfig {
    DbConfig {
        url: format!("host={host} port={} user=postgres dbname=postgres sslmode={sslmode}", pg.port),
        extra_ca_pem: ca.map(|c| c.cert.pem().into_bytes()),
        ..Default::default()
    }
}

async fn uses_tls(store: &mut Store) -> anyhow::Result<bool> {
    store.tls_in_use().await.map_err(Into::into)
}

#[tokio::test]
async fn connects_over_tls_only_to_a_server_the_configured_ca_vouches_for() -> anyhow::Result<()> {
    let pg = Postgres::start_throwaway()?;
    let right = ca()?;
    let (cert, key) = server_cert(&right, &["localhost"])?;
    pg.enable_tls(&cert, &key).await?;

    let mut store = Store::connect_with(&config(&pg, "localhost", "require", Some(&right))).await?;
    assert!(uses_tls(&mut store).await?, "the connection is not encrypted");
    // libpq's strictest mode is accepted and means the same.
    let mut store = Store::connect_with(&config(&pg, "localhost", "verify-full", Some(&right))).await?;
    assert!(uses_tls(&mut store).await?);

    let wrong = ca()?;
    let err = Store::connect_with(&config(&pg, "localhost", "require", Some(&wrong))).await.expect_err("wrong CA");
    assert!(err.to_string().contains("TLS"), "{err}");
    // Without the CA, only the public roots are trusted, which never signed this server.
    Store::connect_with(&config(&pg, "localhost", "require", None)).await.expect_err("no CA");
    // The certificate names localhost, not 127.0.0.1.
    Store::connect_with(&config(&pg, "127.0.0.1", "require", Some(&right))).await.expect_err("wrong host name");
    Ok(())
}

#[tokio::test]
async fn require_refuses_a_server_without_tls() -> anyhow::Result<()> {
    let pg = Postgres::start_throwaway()?;
    let right = ca()?;
    Store::connect_with(&config(&pg, "localhost", "require", Some(&right))).await.expect_err("plaintext server");
    Store::connect_with(&config(&pg, "localhost", "verify-full", Some(&right))).await.expect_err("plaintext server");
    // `disable` is plaintext, for loopback use.
    let mut store = Store::connect_with(&config(&pg, "localhost", "disable", None)).await?;
    assert!(!uses_tls(&mut store).await?);
    Ok(())
}

#[test]
fn a_ca_file_without_certificates_is_a_configuration_error() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = DbConfig {
        url: "host=localhost port=1 user=x sslmode=require".into(),
        extra_ca_pem: Some(b"not a certificate".to_vec()),
        ..Default::default()
    };
    let err = runtime.block_on(Store::connect_with(&config)).expect_err("bad CA file");
    assert!(err.to_string().contains("CA"), "{err}");
}
