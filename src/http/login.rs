//! Console sign-in: OpenID Connect authorization code with PKCE (S256), `state` bound to the
//! browser by a short-lived cookie and used once, `nonce` checked in the ID token, the
//! tenant and roles taken from its claims; the `maestro_session` cookie (HttpOnly,
//! SameSite=Lax, Secure when the console's URL is https); logout. In demo mode on a loopback
//! address, a local login offers the demo identities. Every route here is a GET.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::console::pages::{self, DemoLogin};
use super::console::view::query;
use super::console::{SESSION_COOKIE, cookie, html};
use crate::app::App;
use crate::app::oidc::Redemption;
use crate::app::session::{IDLE, LOGIN_TTL};
use crate::domain::actor::Actor;
use crate::domain::ids::TenantId;

/// Cookie holding the `state` of a login in progress.
pub const LOGIN_COOKIE: &str = "maestro_login";

/// Where the issuer sends the browser back.
fn redirect_uri(app: &App) -> String {
    app.config
        .oidc
        .redirect_url
        .clone()
        .unwrap_or_else(|| format!("http://{}/auth/callback", app.config.listen_addr()))
}

fn secure(app: &App) -> bool {
    redirect_uri(app).starts_with("https://")
}

fn set_cookie(app: &App, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if secure(app) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// A console path to return to: a local absolute path, never another site.
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control())
        && !next.starts_with("/login")
        && !next.starts_with("/auth/")
        && !next.starts_with("/logout");
    if ok { next.to_owned() } else { "/".to_owned() }
}

/// Whether the local demo login is offered: demo mode on a loopback address.
fn demo_login(app: &App) -> bool {
    app.config.demo && app.config.listen_addr().ip().is_loopback()
}

fn demo_identities(app: &App) -> Vec<DemoLogin> {
    if !demo_login(app) {
        return Vec::new();
    }
    app.config
        .tokens
        .iter()
        .map(|t| DemoLogin {
            name: t.name.clone(),
            tenant: t.tenant.clone(),
            roles: t.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        })
        .collect()
}

fn console_issuer(app: &App) -> Option<&str> {
    app.config.oidc.client_id.as_ref()?;
    app.oidc.as_ref().map(|o| o.issuer())
}

fn login_page(app: &App, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    html(
        status,
        pages::login(console_issuer(app), &demo_identities(app), next, error),
    )
}

/// Query of `/login` and `/login/oidc`.
#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    #[serde(default)]
    next: String,
    /// Passed on to the issuer (OpenID Connect `login_hint`), e.g. a user name.
    #[serde(default)]
    login_hint: String,
}

/// `GET /login`
pub async fn login(State(app): State<Arc<App>>, Query(p): Query<NextParam>) -> Response {
    login_page(&app, StatusCode::OK, &safe_next(&p.next), None)
}

/// `GET /login/oidc`: sends the browser to the issuer.
pub async fn login_oidc(State(app): State<Arc<App>>, Query(p): Query<NextParam>) -> Response {
    let next = safe_next(&p.next);
    let (Some(oidc), Some(client_id)) = (&app.oidc, &app.config.oidc.client_id) else {
        return login_page(
            &app,
            StatusCode::NOT_FOUND,
            &next,
            Some("Single sign-on is not configured (oidc.issuer and oidc.client_id)."),
        );
    };
    let endpoints = match oidc.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "the issuer's login endpoints are unavailable");
            return login_page(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                &next,
                Some(&format!("The identity provider cannot be reached: {e}")),
            );
        }
    };
    let login = app.sessions.begin_login(&next);
    let params = query(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", &redirect_uri(&app)),
        ("scope", &app.config.oidc.scopes),
        ("state", &login.state),
        ("nonce", &login.nonce),
        ("code_challenge", &login.challenge()),
        ("code_challenge_method", "S256"),
        ("login_hint", &p.login_hint),
    ]);
    let sep = if endpoints.authorization.contains('?') {
        "&"
    } else {
        "?"
    };
    let url = format!(
        "{}{sep}{}",
        endpoints.authorization,
        params.trim_start_matches('?')
    );
    let mut response = Redirect::to(&url).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &app,
            LOGIN_COOKIE,
            &login.state,
            "/auth",
            LOGIN_TTL.as_secs(),
        ),
    );
    response
}

/// Query of the callback.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    iss: String,
}

fn refused(app: &App, why: &str) -> Response {
    tracing::warn!(reason = why, "console login refused");
    app.metrics
        .auth_failures
        .with_label_values(&["console_login"])
        .inc();
    let mut r = login_page(app, StatusCode::BAD_REQUEST, "/", Some(why));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(app, LOGIN_COOKIE, "", "/auth", 0),
    );
    r
}

/// `GET /auth/callback`: redeems the code, checks the ID token, starts a session.
pub async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(c): Query<Callback>,
) -> Response {
    let (Some(oidc), Some(client_id)) = (&app.oidc, &app.config.oidc.client_id) else {
        return refused(&app, "Single sign-on is not configured.");
    };
    if !c.error.is_empty() {
        return refused(
            &app,
            &format!(
                "The identity provider refused the login: {} {}",
                c.error, c.error_description
            ),
        );
    }
    // The state must be the one this browser started, and is used once.
    if c.state.is_empty() || cookie(&headers, LOGIN_COOKIE) != Some(c.state.as_str()) {
        return refused(
            &app,
            "This login was not started in this browser (state mismatch); start again.",
        );
    }
    let Some(login) = app.sessions.finish_login(&c.state) else {
        return refused(&app, "This login expired or was already used; start again.");
    };
    if !c.iss.is_empty() && c.iss != oidc.issuer() {
        return refused(&app, "The callback names another issuer (iss mismatch).");
    }
    if c.code.is_empty() {
        return refused(&app, "The callback carries no authorization code.");
    }
    let endpoints = match oidc.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            return refused(
                &app,
                &format!("The identity provider cannot be reached: {e}"),
            );
        }
    };
    let redirect = redirect_uri(&app);
    let secret = app.config.oidc.client_secret.as_deref();
    let id_token = match oidc
        .redeem(
            &endpoints.token,
            &Redemption {
                code: &c.code,
                verifier: &login.verifier,
                redirect_uri: &redirect,
                client_id,
                client_secret: secret,
            },
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return refused(&app, &format!("The code could not be redeemed: {e}")),
    };
    let actor = match oidc
        .verify_id_token(&id_token, client_id, &login.nonce)
        .await
    {
        Ok(a) => a,
        Err(e) => return refused(&app, &format!("The ID token was refused: {e}")),
    };
    tracing::info!(subject = %actor.subject, tenant = ?actor.tenant, "console login");
    start_session(&app, actor, &login.next)
}

fn start_session(app: &App, actor: Actor, next: &str) -> Response {
    let session = app.sessions.create(actor);
    let mut r = Redirect::to(&safe_next(next)).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(app, SESSION_COOKIE, &session, "/", IDLE.as_secs()),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(app, LOGIN_COOKIE, "", "/auth", 0),
    );
    r
}

/// Query of the demo login.
#[derive(Debug, Default, Deserialize)]
pub struct DemoParams {
    #[serde(default, rename = "as")]
    name: String,
    #[serde(default)]
    next: String,
}

/// `GET /login/demo?as=NAME`: the local login, in demo mode on a loopback address only.
pub async fn login_demo(State(app): State<Arc<App>>, Query(p): Query<DemoParams>) -> Response {
    if !demo_login(&app) {
        return login_page(
            &app,
            StatusCode::NOT_FOUND,
            "/",
            Some("The local login exists only in demo mode on a loopback address."),
        );
    }
    let Some(t) = app.config.tokens.iter().find(|t| t.name == p.name) else {
        return login_page(
            &app,
            StatusCode::BAD_REQUEST,
            &safe_next(&p.next),
            Some("No such demo identity."),
        );
    };
    let actor = Actor {
        subject: format!("token:{}", t.name),
        tenant: t.tenant.as_deref().and_then(|x| TenantId::new(x).ok()),
        roles: t.roles.clone(),
    };
    start_session(&app, actor, &p.next)
}

/// `GET /logout`: ends the session.
pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        app.sessions.remove(c);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app, SESSION_COOKIE, "", "/", 0),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(
            safe_next("/executions?status=failed"),
            "/executions?status=failed"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "",
            "/login",
            "/auth/callback",
            "javascript:alert(1)",
            "/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }
}
