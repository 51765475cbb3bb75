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

#[test]
fn bootstrap_creates_every_resource_once_and_finds_it_again() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk_config();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let first = localstack::bootstrap::bootstrap(&sdk).await?;
        let second = localstack::bootstrap::bootstrap(&sdk).await?;
        assert_eq!(first.checkpoint_key_id, second.checkpoint_key_id);
        assert_eq!(first.api_key_mac_key_id, second.api_key_mac_key_id);
        assert_eq!(first.receipt_key_kms_key_id, second.receipt_key_kms_key_id);
        let kms = aws_sdk_kms::Client::new(&sdk);
        let keys = kms.list_keys().send().await?;
        assert_eq!(keys.keys().len(), 3, "a second bootstrap created keys again");
        let tables = aws_sdk_dynamodb::Client::new(&sdk).list_tables().send().await?;
        let mut names = tables.table_names().to_vec();
        names.sort();
        assert_eq!(
            names,
            [
                localstack::bootstrap::API_KEYS_TABLE,
                localstack::bootstrap::CONSOLE_SETTINGS_TABLE,
                localstack::bootstrap::EXPORTS_TABLE,
                localstack::bootstrap::RECEIPT_KEYS_TABLE,
                localstack::bootstrap::TAIL_CONNECTIONS_TABLE,
            ]
        );
        // The tail connections table: a tenant's connections by GSI, and TTL on expires_at.
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let tail = dynamodb.describe_table().table_name(localstack::bootstrap::TAIL_CONNECTIONS_TABLE).send().await?;
        let indexes = tail.table().map(|t| t.global_secondary_indexes().to_vec()).unwrap_or_default();
        let by_tenant = indexes.iter().find(|i| i.index_name() == Some("by-tenant")).expect("the tenant index");
        let keys: Vec<&str> = by_tenant.key_schema().iter().map(|k| k.attribute_name()).collect();
        assert_eq!(keys, ["tenant_id", "connected_at"]);
        let ttl =
            dynamodb.describe_time_to_live().table_name(localstack::bootstrap::TAIL_CONNECTIONS_TABLE).send().await?;
        let ttl = ttl.time_to_live_description().and_then(|d| d.attribute_name());
        assert_eq!(ttl, Some("expires_at"));
        // The exports table's sparse sweep index: unfinished jobs by `sweep_at`, with their step.
        let exports = aws_sdk_dynamodb::Client::new(&sdk)
            .describe_table()
            .table_name(localstack::bootstrap::EXPORTS_TABLE)
            .send()
            .await?;
        let indexes = exports.table().map(|t| t.global_secondary_indexes().to_vec()).unwrap_or_default();
        let sweep = indexes.iter().find(|i| i.index_name() == Some("by-sweep-at")).expect("the sweep index");
        let keys: Vec<&str> = sweep.key_schema().iter().map(|k| k.attribute_name()).collect();
        assert_eq!(keys, ["sweep", "sweep_at"]);
        let projected = sweep.projection().map(|p| p.non_key_attributes().to_vec()).unwrap_or_default();
        assert_eq!(projected, ["step"]);
        // Each queue and its dead-letter queue once, with the redrive to it.
        assert_eq!(first.index_queue.url, second.index_queue.url);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let mut queues: Vec<String> = sqs
            .list_queues()
            .send()
            .await?
            .queue_urls()
            .iter()
            .filter_map(|u| u.rsplit('/').next().map(str::to_owned))
            .collect();
        queues.sort();
        assert_eq!(
            queues,
            [
                "audit-log-exports",
                "audit-log-exports-dlq",
                "audit-log-index",
                "audit-log-index-dlq",
                "audit-log-tail",
                "audit-log-tail-dlq"
            ]
        );
        assert_eq!(first.tail_queue.url, second.tail_queue.url);
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&first.index_queue.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await?;
        let redrive = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
            .cloned()
            .unwrap_or_default();
        let redrive: serde_json::Value = serde_json::from_str(&redrive)?;
        assert!(
            redrive["deadLetterTargetArn"].as_str().is_some_and(|a| a.ends_with(":audit-log-index-dlq")),
            "{redrive}"
        );
        let max = &redrive["maxReceiveCount"];
        assert!(max == 5 || max == "5", "{redrive}");
        anyhow::Ok(())
    })
}
