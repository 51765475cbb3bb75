//! The local AWS endpoint starts, tells clients how to reach it, and stops with its owner.

use localstack::moto::Moto;
use std::net::TcpStream;

#[test]
fn dedicated_server_answers_and_stops_on_drop() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let url = moto.url();
    let address = url.trim_start_matches("http://").to_owned();
    assert!(TcpStream::connect(&address).is_ok(), "{url} does not answer");

    drop(moto);
    assert!(TcpStream::connect(&address).is_err(), "{url} still answers after drop");
    Ok(())
}

#[test]
fn env_vars_point_child_processes_at_the_server_without_metadata_lookups() -> anyhow::Result<()> {
    let moto = Moto::shared()?;
    let vars = moto.env_vars();
    let get = |name: &str| vars.iter().find(|(key, _)| *key == name).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(moto.url().as_str()));
    assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
    assert_eq!(get("AWS_REGION"), Some("us-east-1"));
    assert!(get("AWS_ACCESS_KEY_ID").is_some() && get("AWS_SECRET_ACCESS_KEY").is_some());
    Ok(())
}

#[test]
fn sdk_config_carries_endpoint_region_and_static_credentials() -> anyhow::Result<()> {
    let moto = Moto::shared()?;
    let config = moto.sdk_config();
    assert_eq!(config.endpoint_url(), Some(moto.url().as_str()));
    assert_eq!(config.region().map(|r| r.as_ref()), Some("us-east-1"));
    assert!(config.credentials_provider().is_some());
    Ok(())
}
