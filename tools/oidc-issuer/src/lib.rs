//! A small OpenID Connect issuer on loopback, for tests and the local run. It serves what a
//! relying party and the console's browser flow use:
//!
//! - `GET /.well-known/openid-configuration` (discovery) and `GET /jwks` (a real RSA 2048 key
//!   for RS256 and a real P-256 key for ES256; [`Issuer::rotate`] replaces both);
//! - `GET /authorize`: the authorization code flow with PKCE (S256 only). It approves the user
//!   named by `login_hint` at once (no login page) and redirects to `redirect_uri` with a code;
//! - `POST /token`: exchanges the code and its `code_verifier` for an `id_token`, with CORS
//!   headers for the configured console origins, so a browser can call it.
//!
//! Tests also mint tokens directly: valid ones for a user ([`Issuer::token_for`]) and the bad
//! kinds a verifier must refuse ([`Mint`]: `alg: none`, HS256 with the public key as the secret,
//! an unknown `kid`, a retired key), with any claims (expired, another audience or issuer).
//!
//! Each issuer listens on its own free port, so tests running in parallel never share one.

use anyhow::{Context, Result};
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand::RngCore;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a minted ID token is valid.
pub const TOKEN_SECONDS: i64 = 3600;
/// How long an authorization code may wait for its exchange.
const CODE_SECONDS: u64 = 60;

/// A user the issuer signs in: `login` (what `login_hint` names) and the claims its tokens
/// carry besides the standard ones (for example `{"roles": ["audit-admins"]}`).
#[derive(Debug, Clone)]
pub struct User {
    pub login: String,
    pub claims: Map<String, Value>,
}

impl User {
    /// A user whose `claim` holds `roles`.
    pub fn with_roles(login: &str, claim: &str, roles: &[&str]) -> Self {
        let mut claims = Map::new();
        claims.insert(claim.to_owned(), json!(roles));
        claims.insert("email".to_owned(), json!(format!("{login}@example.test")));
        User { login: login.to_owned(), claims }
    }
}

/// What the issuer serves.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The only client it knows (the tokens' `aud`).
    pub client_id: String,
    /// Origins whose browsers may call `/token` (CORS).
    pub allowed_origins: Vec<String>,
    pub users: Vec<User>,
}

/// How [`Issuer::mint`] signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mint {
    /// RS256 with the current RSA key.
    Rs256,
    /// ES256 with the current P-256 key.
    Es256,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 whose secret is the RSA public key (the classic algorithm confusion).
    Hs256WithPublicKey,
    /// RS256 with the current key but a `kid` the issuer never published.
    UnknownKid,
    /// RS256 with the key [`Issuer::rotate`] replaced (its `kid`, no longer published).
    RetiredKey,
}

struct SigningKeys {
    rsa_kid: String,
    rsa_der: Vec<u8>,
    rsa_public: Value,
    rsa_public_pem: String,
    ec_kid: String,
    ec_der: Vec<u8>,
    ec_public: Value,
}

fn random_id(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl SigningKeys {
    fn generate() -> Result<Self> {
        use rsa::pkcs8::EncodePublicKey;
        let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).context("generating an RSA key")?;
        let rsa_kid = format!("rsa-{}", random_id(6));
        let rsa_public = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": rsa_kid,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_bytes_be()),
        });
        let rsa_public_pem =
            rsa.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).context("encoding the RSA public key")?;
        let rsa_der = rsa.to_pkcs1_der().context("encoding the RSA key")?.as_bytes().to_vec();
        let ec = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = ec.public_key().to_encoded_point(false);
        let ec_kid = format!("ec-{}", random_id(6));
        let ec_public = json!({
            "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": ec_kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().context("x")?),
            "y": URL_SAFE_NO_PAD.encode(point.y().context("y")?),
        });
        let ec_der =
            p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&ec).context("encoding the P-256 key")?.as_bytes().to_vec();
        Ok(SigningKeys { rsa_kid, rsa_der, rsa_public, rsa_public_pem, ec_kid, ec_der, ec_public })
    }
}

struct PendingCode {
    login: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    issued: Instant,
}

struct Inner {
    issuer: String,
    config: IssuerConfig,
    keys: Mutex<(SigningKeys, Option<SigningKeys>)>,
    codes: Mutex<HashMap<String, PendingCode>>,
    jwks_fetches: AtomicUsize,
}

/// A running issuer; stops when dropped.
pub struct Issuer {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("issuer", &self.inner.issuer).finish_non_exhaustive()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Issuer {
    /// Starts an issuer on a free loopback port.
    pub async fn start(config: IssuerConfig) -> Result<Issuer> {
        Self::start_on(0, config).await
    }

    /// Starts an issuer on `port` of 127.0.0.1 (0: a free one).
    pub async fn start_on(port: u16, config: IssuerConfig) -> Result<Issuer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("binding the issuer's port")?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let keys = tokio::task::spawn_blocking(SigningKeys::generate).await??;
        let inner = Arc::new(Inner {
            issuer,
            config,
            keys: Mutex::new((keys, None)),
            codes: Mutex::new(HashMap::new()),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = router(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the OIDC issuer stopped");
            }
        });
        Ok(Issuer { inner, task })
    }

    /// The issuer identifier (`iss`), e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.inner.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.inner.config.client_id
    }

    /// How many times `/jwks` was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.inner.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Replaces both signing keys with new ones under new `kid`s; the old RSA key is kept only
    /// for [`Mint::RetiredKey`], and no longer published.
    pub async fn rotate(&self) -> Result<()> {
        let fresh = tokio::task::spawn_blocking(SigningKeys::generate).await??;
        let mut keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut keys.0, fresh);
        keys.1 = Some(old);
        Ok(())
    }

    /// The claims of a valid ID token for `login` (which must be a configured user), for the
    /// issuer's client, issued now.
    pub fn claims_for(&self, login: &str) -> Result<Value> {
        let user = self.inner.user(login).with_context(|| format!("no user {login}"))?;
        Ok(self.inner.claims(user, None))
    }

    /// A valid RS256 ID token for `login`.
    pub fn token_for(&self, login: &str) -> Result<String> {
        self.mint(&self.claims_for(login)?, Mint::Rs256)
    }

    /// Signs `claims` as `how` says.
    pub fn mint(&self, claims: &Value, how: Mint) -> Result<String> {
        self.inner.mint(claims, how)
    }
}

impl Inner {
    fn user(&self, login: &str) -> Option<&User> {
        self.config.users.iter().find(|u| u.login == login)
    }

    fn claims(&self, user: &User, nonce: Option<&str>) -> Value {
        let now = chrono_now();
        let mut claims = user.claims.clone();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("aud".into(), json!(self.config.client_id));
        claims.insert("sub".into(), json!(format!("user-{}", user.login)));
        claims.insert("iat".into(), json!(now));
        claims.insert("nbf".into(), json!(now));
        claims.insert("exp".into(), json!(now + TOKEN_SECONDS));
        claims.insert("preferred_username".into(), json!(user.login));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        Value::Object(claims)
    }

    fn mint(&self, claims: &Value, how: Mint) -> Result<String> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let (current, retired) = (&keys.0, keys.1.as_ref());
        let sign = |alg: Algorithm, kid: &str, key: EncodingKey| -> Result<String> {
            let mut header = Header::new(alg);
            header.kid = Some(kid.to_owned());
            Ok(jsonwebtoken::encode(&header, claims, &key)?)
        };
        match how {
            Mint::Rs256 => sign(Algorithm::RS256, &current.rsa_kid, EncodingKey::from_rsa_der(&current.rsa_der)),
            Mint::Es256 => sign(Algorithm::ES256, &current.ec_kid, EncodingKey::from_ec_der(&current.ec_der)),
            Mint::UnknownKid => sign(Algorithm::RS256, "never-published", EncodingKey::from_rsa_der(&current.rsa_der)),
            Mint::RetiredKey => {
                let old = retired.context("no key was rotated out yet")?;
                sign(Algorithm::RS256, &old.rsa_kid, EncodingKey::from_rsa_der(&old.rsa_der))
            }
            Mint::Hs256WithPublicKey => {
                sign(Algorithm::HS256, &current.rsa_kid, EncodingKey::from_secret(current.rsa_public_pem.as_bytes()))
            }
            Mint::AlgNone => {
                let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT" }).to_string());
                Ok(format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string())))
            }
        }
    }

    fn cors(&self, request: &HeaderMap, response: &mut Response) {
        let origin = request.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if let Some(origin) = origin.filter(|o| self.config.allowed_origins.iter().any(|a| a == o)) {
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(origin) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            }
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({ "error": error, "error_description": description }))).into_response()
}

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", axum::routing::post(token).options(token_preflight))
        .with_state(inner)
}

/// Discovery and the JWKS are public documents that browsers fetch from other origins (a
/// single-page app reads discovery before it redirects), so they allow any origin, as identity
/// providers serve them.
fn public_document(body: Value) -> Response {
    ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(body)).into_response()
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Response {
    let base = &inner.issuer;
    public_document(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    inner.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = inner.keys.lock().unwrap_or_else(|p| p.into_inner());
    public_document(json!({ "keys": [keys.0.rsa_public, keys.0.ec_public] }))
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    login_hint: Option<String>,
    nonce: Option<String>,
}

async fn authorize(State(inner): State<Arc<Inner>>, Query(p): Query<AuthorizeParams>) -> Response {
    if p.client_id != inner.config.client_id {
        return oauth_error(StatusCode::BAD_REQUEST, "unauthorized_client", "unknown client_id");
    }
    if p.response_type != "code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_response_type", "only code");
    }
    let (Some(challenge), Some("S256")) = (p.code_challenge, p.code_challenge_method.as_deref()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "PKCE with S256 is required");
    };
    let Some(user) = p.login_hint.as_deref().and_then(|l| inner.user(l)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "login_hint names no user");
    };
    let Ok(mut redirect) = reqwest::Url::parse(&p.redirect_uri) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri is not a URL");
    };
    let code = random_id(24);
    inner.codes.lock().unwrap_or_else(|e| e.into_inner()).insert(
        code.clone(),
        PendingCode {
            login: user.login.clone(),
            redirect_uri: p.redirect_uri.clone(),
            challenge,
            nonce: p.nonce,
            issued: Instant::now(),
        },
    );
    {
        let mut query = redirect.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = &p.state {
            query.append_pair("state", state);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(redirect.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    code_verifier: String,
}

async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    let mut response = exchange(&inner, form);
    inner.cors(&headers, &mut response);
    response
}

fn exchange(inner: &Inner, form: TokenForm) -> Response {
    if form.grant_type != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "only authorization_code");
    }
    // A code is used once, whatever the outcome.
    let pending = inner.codes.lock().unwrap_or_else(|e| e.into_inner()).remove(&form.code);
    let Some(pending) = pending.filter(|c| c.issued.elapsed() < Duration::from_secs(CODE_SECONDS)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown, used or expired code");
    };
    let verified = URL_SAFE_NO_PAD.encode(Sha256::digest(form.code_verifier.as_bytes())) == pending.challenge;
    if form.client_id != inner.config.client_id || form.redirect_uri != pending.redirect_uri || !verified {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "client, redirect_uri or code_verifier do not match",
        );
    }
    let Some(user) = inner.user(&pending.login) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the user is gone");
    };
    let claims = inner.claims(user, pending.nonce.as_deref());
    match inner.mint(&claims, Mint::Rs256) {
        Ok(id_token) => Json(json!({
            "access_token": random_id(24),
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": "openid email profile",
            "id_token": id_token,
        }))
        .into_response(),
        Err(e) => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &e.to_string()),
    }
}

async fn token_preflight(State(inner): State<Arc<Inner>>, headers: HeaderMap, method: Method) -> Response {
    let mut response =
        if method == Method::OPTIONS { StatusCode::NO_CONTENT } else { StatusCode::METHOD_NOT_ALLOWED }.into_response();
    inner.cors(&headers, &mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IssuerConfig {
        IssuerConfig {
            client_id: "console".into(),
            allowed_origins: vec!["http://127.0.0.1:3000".into()],
            users: vec![User::with_roles("ada", "roles", &["audit-admins"])],
        }
    }

    #[tokio::test]
    async fn the_code_flow_with_pkce_returns_an_id_token_with_cors() -> Result<()> {
        let issuer = Issuer::start(config()).await?;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let verifier = random_id(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1:3000/console/callback";
        let authorize = http
            .get(format!("{}/authorize", issuer.url()))
            .query(&[
                ("response_type", "code"),
                ("client_id", "console"),
                ("redirect_uri", redirect),
                ("state", "s1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("login_hint", "ada"),
            ])
            .send()
            .await?;
        assert_eq!(authorize.status(), StatusCode::FOUND);
        let location = reqwest::Url::parse(authorize.headers()[header::LOCATION].to_str()?)?;
        let code = location.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).context("code")?;
        assert!(location.query_pairs().any(|(k, v)| k == "state" && v == "s1"));

        let exchange = |verifier: String, code: String| {
            http.post(format!("{}/token", issuer.url()))
                .header(header::ORIGIN, "http://127.0.0.1:3000")
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect),
                    ("client_id", "console"),
                    ("code_verifier", verifier.as_str()),
                ])
                .send()
        };
        let wrong = exchange("not-the-verifier".into(), code.clone()).await?;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST, "and the code is spent");
        // A fresh code, exchanged properly.
        let authorize = http
            .get(format!("{}/authorize", issuer.url()))
            .query(&[
                ("response_type", "code"),
                ("client_id", "console"),
                ("redirect_uri", redirect),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("login_hint", "ada"),
            ])
            .send()
            .await?;
        let location = reqwest::Url::parse(authorize.headers()[header::LOCATION].to_str()?)?;
        let code = location.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).context("code")?;
        let ok = exchange(verifier, code).await?;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://127.0.0.1:3000");
        let body: Value = ok.json().await?;
        let id_token = body["id_token"].as_str().context("id_token")?;
        let header = jsonwebtoken::decode_header(id_token)?;
        assert_eq!(header.alg, Algorithm::RS256);

        let jwks: Value = http.get(format!("{}/jwks", issuer.url())).send().await?.json().await?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone())?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["console"]);
        validation.set_issuer(&[issuer.url()]);
        let data = jsonwebtoken::decode::<Value>(id_token, &jsonwebtoken::DecodingKey::from_jwk(&jwk)?, &validation)?;
        assert_eq!(data.claims["roles"], json!(["audit-admins"]));
        assert_eq!(issuer.jwks_fetches(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn es256_tokens_verify_with_the_published_p256_key() -> Result<()> {
        let issuer = Issuer::start(config()).await?;
        let token = issuer.mint(&issuer.claims_for("ada")?, Mint::Es256)?;
        let jwks: Value = reqwest::get(format!("{}/jwks", issuer.url())).await?.json().await?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][1].clone())?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&["console"]);
        jsonwebtoken::decode::<Value>(&token, &jsonwebtoken::DecodingKey::from_jwk(&jwk)?, &validation)?;
        Ok(())
    }
}
