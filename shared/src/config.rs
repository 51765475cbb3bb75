//! Typed configuration, read once from the environment at cold start. Every missing or invalid
//! variable is collected and reported together, so a misconfigured deployment fails its first
//! invocation with one complete message instead of one variable per redeploy. Required settings
//! have no silent defaults.

use base64::Engine;
use std::fmt;
use std::str::FromStr;

/// Everything wrong with the environment, all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables and remembers what was wrong. Values are never logged (some are secrets'
/// names, none are secrets, but the habit matters).
#[derive(Debug)]
pub struct Env<F = fn(&str) -> Option<String>> {
    lookup: F,
    errors: Vec<String>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Env { lookup: |name| std::env::var(name).ok(), errors: Vec::new() }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Reads from `lookup` instead of the process environment (tests).
    pub fn with_lookup(lookup: F) -> Self {
        Env { lookup, errors: Vec::new() }
    }

    /// A non-empty value, or an error naming the variable.
    pub fn required(&mut self, name: &str) -> String {
        match self.optional(name) {
            Some(value) => value,
            None => {
                self.errors.push(format!("{name} is not set"));
                String::new()
            }
        }
    }

    /// A non-empty value, if set.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A parsed value, `default` when unset; an unparsable value is an error.
    pub fn parsed<T: FromStr>(&mut self, name: &str, default: T) -> T {
        match self.optional(name) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.errors.push(format!("{name} is not a valid {}", std::any::type_name::<T>()));
                default
            }),
        }
    }

    /// Records that `name` is set to something unusable.
    pub fn reject(&mut self, name: &str, why: &str) {
        self.errors.push(format!("{name}: {why}"));
    }

    /// Ok if every read succeeded.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.errors))
        }
    }
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`: libpq key/value string or `postgres://` URL, with `sslmode`.
    pub url: String,
    /// `DATABASE_SECRET_ARN`: a Secrets Manager secret holding `{"username", "password"}` (the
    /// form RDS manages), read once at cold start. Unset: the URL carries the credentials.
    pub secret_arn: Option<String>,
    /// `DATABASE_CA_FILE`: PEM certificates trusted besides the public roots (the RDS CA bundle
    /// for a direct RDS connection).
    pub ca_file: Option<String>,
    /// `DATABASE_POOL_SIZE`: connections kept; 1 in Lambda, where an instance serves one request
    /// at a time.
    pub pool_size: usize,
    /// `PUBLISHER_POLICY_CACHE_SECONDS` (default 10): how long a connection keeps a tenant's
    /// publisher keys and `require_signatures`; revocations take effect within it.
    pub policy_cache_seconds: u64,
}

impl DatabaseSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        DatabaseSettings {
            url: env.required("DATABASE_URL"),
            secret_arn: env.optional("DATABASE_SECRET_ARN"),
            ca_file: env.optional("DATABASE_CA_FILE"),
            pool_size: env.parsed("DATABASE_POOL_SIZE", 1usize),
            policy_cache_seconds: env.parsed("PUBLISHER_POLICY_CACHE_SECONDS", 10u64),
        }
    }

    /// The maintenance role's connection (erasure): `MAINTENANCE_DATABASE_URL` and
    /// `MAINTENANCE_DATABASE_SECRET_ARN`, with the CA file and pool size of the service's.
    pub fn maintenance_from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        DatabaseSettings {
            url: env.required("MAINTENANCE_DATABASE_URL"),
            secret_arn: env.optional("MAINTENANCE_DATABASE_SECRET_ARN"),
            ca_file: env.optional("DATABASE_CA_FILE"),
            pool_size: env.parsed("DATABASE_POOL_SIZE", 1usize),
            policy_cache_seconds: 0,
        }
    }
}

/// The KMS key that signs checkpoints and the signed-note origin/key name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSettings {
    /// `CHECKPOINT_KEY_ID`: key id, ARN or alias of the ECC_NIST_P256 key.
    pub key_id: String,
    /// `CHECKPOINT_ORIGIN`: e.g. `audit.example.com/log`; tenants' origins are `<this>/<tenant>`.
    pub origin: String,
    /// `CHECKPOINT_RETIRED_PUBLIC_KEYS`: comma-separated base64 DER public keys of earlier
    /// checkpoint keys. After a rotation, notes signed by them still verify; they are trusted
    /// from configuration only, never from the database.
    pub retired_public_keys: Vec<Vec<u8>>,
}

impl CheckpointSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        const RETIRED: &str = "CHECKPOINT_RETIRED_PUBLIC_KEYS";
        let mut retired_public_keys = Vec::new();
        for (i, item) in env.optional(RETIRED).unwrap_or_default().split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let der = base64::engine::general_purpose::STANDARD.decode(item).ok();
            match der.filter(|der| crate::chain::checkpoint::public_key_pem(der).is_ok()) {
                Some(der) => retired_public_keys.push(der),
                None => env.reject(RETIRED, &format!("item {i} is not a base64 DER P-256 public key")),
            }
        }
        CheckpointSettings {
            key_id: env.required("CHECKPOINT_KEY_ID"),
            origin: env.required("CHECKPOINT_ORIGIN"),
            retired_public_keys,
        }
    }
}

/// The S3 bucket (Object Lock, compliance mode) the global log's checkpoints are anchored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorSettings {
    /// `ANCHOR_BUCKET`.
    pub bucket: String,
    /// `ANCHOR_RETENTION_DAYS`: how long each anchor is locked (default 2557, about 7 years).
    pub retention_days: u32,
}

impl AnchorSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        AnchorSettings {
            bucket: env.required("ANCHOR_BUCKET"),
            retention_days: env.parsed("ANCHOR_RETENTION_DAYS", 2557u32),
        }
    }
}

/// Pruning: where archives go and how long content is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruningSettings {
    /// `ARCHIVE_BUCKET`.
    pub archive_bucket: String,
    /// `RETENTION_MONTHS` (default 24, at least 1): whole months of content kept before a
    /// partition is archived and dropped.
    pub retention_months: u32,
}

impl PruningSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let retention_months = env.parsed("RETENTION_MONTHS", 24u32);
        if retention_months == 0 {
            env.reject("RETENTION_MONTHS", "must be at least 1");
        }
        PruningSettings { archive_bucket: env.required("ARCHIVE_BUCKET"), retention_months }
    }
}

/// API keys: the DynamoDB table and the KMS HMAC key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySettings {
    /// `API_KEYS_TABLE`.
    pub table: String,
    /// `API_KEY_MAC_KEY_ID`: an HMAC_256 KMS key.
    pub mac_key_id: String,
}

impl ApiKeySettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        ApiKeySettings { table: env.required("API_KEYS_TABLE"), mac_key_id: env.required("API_KEY_MAC_KEY_ID") }
    }
}

/// The tenant console settings table (`aws::console_settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettingsTable {
    /// `CONSOLE_SETTINGS_TABLE`.
    pub table: String,
}

impl ConsoleSettingsTable {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        ConsoleSettingsTable { table: env.required("CONSOLE_SETTINGS_TABLE") }
    }
}

/// How the authorizer checks OIDC ID tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// `OIDC_ALLOW_LOOPBACK_ISSUERS` (default false): accept `http://` issuers on loopback hosts
    /// (the local run's issuer). Every other issuer must be `https://`.
    pub allow_loopback_issuers: bool,
    /// `OIDC_JWKS_CACHE_SECONDS` (default 600): how long an issuer's keys are kept.
    pub jwks_cache_seconds: u64,
    /// `OIDC_JWKS_MIN_REFETCH_SECONDS` (default 60): an unknown `kid` fetches the issuer's keys
    /// again, at most this often per issuer.
    pub jwks_min_refetch_seconds: u64,
    /// `OIDC_HTTP_TIMEOUT_MS` (default 3000): each discovery or JWKS request's limit.
    pub http_timeout_ms: u64,
}

impl OidcSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        OidcSettings {
            allow_loopback_issuers: env.parsed("OIDC_ALLOW_LOOPBACK_ISSUERS", false),
            jwks_cache_seconds: env.parsed("OIDC_JWKS_CACHE_SECONDS", 600),
            jwks_min_refetch_seconds: env.parsed("OIDC_JWKS_MIN_REFETCH_SECONDS", 60),
            http_timeout_ms: env.parsed("OIDC_HTTP_TIMEOUT_MS", 3000),
        }
    }
}

/// Receipt keys: the DynamoDB table and the KMS key their private halves are encrypted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSettings {
    /// `RECEIPT_KEYS_TABLE`.
    pub table: String,
    /// `RECEIPT_KEY_KMS_KEY_ID`: a SYMMETRIC_DEFAULT KMS key.
    pub kek_key_id: String,
}

impl ReceiptSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        ReceiptSettings {
            table: env.required("RECEIPT_KEYS_TABLE"),
            kek_key_id: env.required("RECEIPT_KEY_KMS_KEY_ID"),
        }
    }
}

/// The queues every append's outbox row goes to after commit: the index queue
/// (`INDEX_QUEUE_URL`) and, where the live tail is deployed, the tail queue (`TAIL_QUEUE_URL`;
/// unset: no tail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexQueueSettings {
    pub queue_url: String,
    pub tail_queue_url: Option<String>,
}

impl IndexQueueSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        IndexQueueSettings {
            queue_url: env.required("INDEX_QUEUE_URL"),
            tail_queue_url: env.optional("TAIL_QUEUE_URL"),
        }
    }
}

/// The live tail: the connections table (`TAIL_CONNECTIONS_TABLE`) and the endpoint of the
/// WebSocket API's Management API (`TAIL_MANAGEMENT_URL`: `https://<api id>.execute-api.<region>
/// .amazonaws.com/<stage>` in AWS, the local gateway's URL locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailSettings {
    pub connections_table: String,
    pub management_url: String,
}

impl TailSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        TailSettings {
            connections_table: env.required("TAIL_CONNECTIONS_TABLE"),
            management_url: env.required("TAIL_MANAGEMENT_URL"),
        }
    }
}

/// OpenSearch: `OPENSEARCH_URL` (unset: PostgreSQL's full text serves `q`) and
/// `OPENSEARCH_INDEX` (default `audit-events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSettings {
    pub url: Option<String>,
    pub index: String,
}

impl SearchSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        SearchSettings { url: env.optional("OPENSEARCH_URL"), index: Self::index(env) }
    }

    fn index<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> String {
        env.optional("OPENSEARCH_INDEX").unwrap_or_else(|| "audit-events".to_owned())
    }
}

/// Exports: the jobs table (`EXPORTS_TABLE`), the export queue (`EXPORT_QUEUE_URL`), the bucket
/// (`EXPORT_BUCKET`) and how long presigned URLs last (`EXPORT_URL_SECONDS`, default 900).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    pub table: String,
    pub queue_url: String,
    pub bucket: String,
    pub url_seconds: u64,
}

impl ExportSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let url_seconds = env.parsed("EXPORT_URL_SECONDS", 900u64);
        if !(1..=7 * 24 * 3600).contains(&url_seconds) {
            env.reject("EXPORT_URL_SECONDS", "must be 1 to 604800 (S3's presigning limit)");
        }
        ExportSettings {
            table: env.required("EXPORTS_TABLE"),
            queue_url: env.required("EXPORT_QUEUE_URL"),
            bucket: env.required("EXPORT_BUCKET"),
            url_seconds,
        }
    }
}

/// The export sweep (run by the relay): the jobs table (`EXPORTS_TABLE`) and the export queue
/// (`EXPORT_QUEUE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSweepSettings {
    pub table: String,
    pub queue_url: String,
}

impl ExportSweepSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        ExportSweepSettings { table: env.required("EXPORTS_TABLE"), queue_url: env.required("EXPORT_QUEUE_URL") }
    }
}

/// The web console's deployment settings (the `console` function), served to the browser as
/// `/console/config.json` and used for the pages' Content-Security-Policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// `CONSOLE_API_BASE`: where the API is, as the browser sees it (default `/`: same origin).
    pub api_base: String,
    /// `CONSOLE_TAIL_URL`: the live tail's WebSocket URL (`wss://...`); none: no live tail.
    pub tail_url: Option<String>,
    /// `CONSOLE_CHECKPOINT_KEYS`: comma-separated signed-note verifier key strings (as
    /// `GET /v1/checkpoints/public-key` gives them) that the browser verifies checkpoints with.
    pub checkpoint_keys: Vec<String>,
    /// `CONSOLE_GLOBAL_LOG_KEYS`: the same for the global log of tenant heads.
    pub global_log_keys: Vec<String>,
    /// `CONSOLE_FRAME_ANCESTORS`: space-separated CSP sources that may frame the console when no
    /// tenant setting says otherwise (default `'none'`).
    pub frame_ancestors: Vec<String>,
}

impl ConsoleSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let list = |value: Option<String>| -> Vec<String> {
            value.unwrap_or_default().split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect()
        };
        let tail_url = env.optional("CONSOLE_TAIL_URL").filter(|u| !u.trim().is_empty());
        if let Some(url) = &tail_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                env.reject("CONSOLE_TAIL_URL", "must be a ws:// or wss:// URL");
            }
        }
        let frame_ancestors: Vec<String> =
            env.optional("CONSOLE_FRAME_ANCESTORS").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        ConsoleSettings {
            api_base: env.optional("CONSOLE_API_BASE").filter(|b| !b.is_empty()).unwrap_or_else(|| "/".to_owned()),
            tail_url,
            checkpoint_keys: list(env.optional("CONSOLE_CHECKPOINT_KEYS")),
            global_log_keys: list(env.optional("CONSOLE_GLOBAL_LOG_KEYS")),
            frame_ancestors: if frame_ancestors.is_empty() { vec!["'none'".to_owned()] } else { frame_ancestors },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env::with_lookup(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn reports_every_missing_variable_at_once() {
        let mut e = env(&[("API_KEYS_TABLE", "keys")]);
        let _ = DatabaseSettings::from_env(&mut e);
        let _ = ApiKeySettings::from_env(&mut e);
        let err = e.finish().unwrap_err();
        assert_eq!(err.0, vec!["DATABASE_URL is not set", "API_KEY_MAC_KEY_ID is not set"]);
    }

    #[test]
    fn blank_values_count_as_unset() {
        let mut e = env(&[("DATABASE_URL", "  ")]);
        let _ = DatabaseSettings::from_env(&mut e);
        assert_eq!(e.finish().unwrap_err().0, vec!["DATABASE_URL is not set"]);
    }

    #[test]
    fn reads_retired_checkpoint_keys_and_rejects_what_is_not_a_p256_key() {
        use p256::pkcs8::EncodePublicKey;
        let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let der = key.verifying_key().to_public_key_der().unwrap().into_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let base = [("CHECKPOINT_KEY_ID", "alias/k"), ("CHECKPOINT_ORIGIN", "audit.example.com/log")];
        let listed = format!("{b64}, {b64}");
        let mut e = env(&[base[0], base[1], ("CHECKPOINT_RETIRED_PUBLIC_KEYS", &listed)]);
        assert_eq!(CheckpointSettings::from_env(&mut e).retired_public_keys, vec![der.clone(), der]);
        e.finish().unwrap();
        let mut e = env(&[base[0], base[1], ("CHECKPOINT_RETIRED_PUBLIC_KEYS", &format!("{b64},bm90IGEga2V5"))]);
        let _ = CheckpointSettings::from_env(&mut e);
        assert_eq!(
            e.finish().unwrap_err().0,
            vec!["CHECKPOINT_RETIRED_PUBLIC_KEYS: item 1 is not a base64 DER P-256 public key"]
        );
    }

    #[test]
    fn rejects_an_unparsable_number_and_names_it() {
        let mut e = env(&[("DATABASE_URL", "host=x"), ("DATABASE_POOL_SIZE", "many")]);
        let settings = DatabaseSettings::from_env(&mut e);
        assert_eq!(settings.pool_size, 1);
        assert_eq!(e.finish().unwrap_err().0, vec!["DATABASE_POOL_SIZE is not a valid usize"]);
    }

    #[test]
    fn reads_a_complete_environment() {
        let mut e = env(&[("DATABASE_URL", "host=db"), ("DATABASE_POOL_SIZE", "4"), ("DATABASE_SECRET_ARN", "arn:x")]);
        let settings = DatabaseSettings::from_env(&mut e);
        e.finish().unwrap();
        assert_eq!(settings.pool_size, 4);
        assert_eq!(settings.secret_arn.as_deref(), Some("arn:x"));
        assert_eq!(settings.ca_file, None);
    }
}
