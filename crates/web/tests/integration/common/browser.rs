//! A browser without JavaScript for the page tests: a cookie jar, forms, the page's fields.

use super::TestApp;

pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: u16,
    /// Where the response came from (after redirects, for a following browser).
    pub url: String,
    pub html: String,
    /// `Location` of a redirect (a browser that does not follow them).
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The value of the form field `name` (the first one on the page).
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start =
            self.html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {}:\n{}", self.url, self.html))
                + marker.len();
        self.html[start..].split('"').next().expect("value").to_string()
    }
    pub fn csrf(&self) -> String {
        self.field("csrf")
    }
    pub fn has(&self, text: &str) -> bool {
        self.html.contains(text)
    }
    /// The visible text of the page's `<main>`: tags stripped (so no hidden CSRF values),
    /// whitespace collapsed — what a snapshot of an error page should hold.
    pub fn main_text(&self) -> String {
        let start = self.html.find("<main>").unwrap_or_else(|| panic!("no <main> in {}:\n{}", self.url, self.html))
            + "<main>".len();
        let end = self.html[start..].find("</main>").map_or(self.html.len(), |i| start + i);
        let mut text = String::new();
        let mut in_tag = false;
        for ch in self.html[start..end].chars() {
            match ch {
                '<' => {
                    in_tag = true;
                    text.push(' ');
                }
                '>' if in_tag => in_tag = false,
                _ if !in_tag => text.push(ch),
                _ => {}
            }
        }
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

impl Browser {
    /// Follows redirects, as a person's browser does.
    pub fn new(t: &TestApp) -> Self {
        Self::with(t, reqwest::redirect::Policy::default())
    }

    /// Stops at redirects, to check where they go.
    pub fn not_following(t: &TestApp) -> Self {
        Self::with(t, reqwest::redirect::Policy::none())
    }

    /// Stops at redirects; every request arrives through a proxy that writes
    /// `X-Forwarded-For: <client>` (the test server's peer is always 127.0.0.1).
    pub fn forwarded_for(t: &TestApp, client: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", client.parse().expect("header value"));
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("client");
        Browser { client, base: t.base.clone() }
    }

    /// Goes on with the same cookies at `t`'s (restarted) server.
    pub fn follow(&mut self, t: &TestApp) {
        self.base = t.base.clone();
    }

    fn with(t: &TestApp, redirect: reqwest::redirect::Policy) -> Self {
        let client = reqwest::Client::builder().cookie_store(true).redirect(redirect).build().expect("client");
        Browser { client, base: t.base.clone() }
    }

    pub async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let url = resp.url().to_string();
        let headers = resp.headers().clone();
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let set_cookies =
            headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
        Page { status, url, html: resp.text().await.expect("body"), location, set_cookies, headers }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(self.client.get(format!("{}{path}", self.base)).send().await.expect("get")).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(self.client.post(format!("{}{path}", self.base)).form(form).send().await.expect("post")).await
    }

    /// 「ログイン」 with the form's CSRF token; the page after it.
    pub async fn login(&self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        self.post("/login", &[("csrf", &form.csrf()), ("email", email), ("password", password)]).await
    }

    /// The operator console's login form: email, password and the authenticator code, with
    /// the form's CSRF token.
    pub async fn console_login(&self, email: &str, password: &str, code: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200);
        self.post("/console/login", &[("csrf", &form.csrf()), ("email", email), ("password", password), ("code", code)])
            .await
    }

    /// Status, headers and raw body (images).
    pub async fn bytes(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.expect("get");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.expect("body").to_vec())
    }
}
