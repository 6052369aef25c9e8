//! A signed-in admin browser over plain HTTP, for testing the admin UI's pages without a real browser:
//! it keeps the session cookie, reads the CSRF token from the last page, and posts forms the way a
//! browser would (URL-encoded, or multipart for uploads), without following redirects.

use reqwest::StatusCode;

/// A page as the server answered it.
pub struct Page {
    pub status: StatusCode,
    /// `Location`, for redirects.
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Self {
            status,
            location,
            html: response.text().await.unwrap(),
        }
    }

    /// The text of the element with `id` (up to its first tag), as a browser shows it.
    pub fn text_of(&self, id: &str) -> Option<String> {
        let start = self.html.find(&format!("id=\"{id}\""))?;
        let rest = &self.html[start..];
        let open = rest.find('>')? + 1;
        let end = rest[open..].find('<')?;
        Some(unescape(&rest[open..open + end]))
    }

    /// The `value` of the first input named `name`, as a browser would submit it.
    pub fn input_value(&self, name: &str) -> Option<String> {
        let start = self.html.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &self.html[start..];
        let value = &rest[rest.find("value=\"")? + 7..];
        Some(unescape(&value[..value.find('"')?]))
    }
}

/// Undo the HTML escaping the templates apply (the entities they produce).
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A browser session against `base` (`http://ADDR`).
pub struct AdminPages {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
    /// The CSRF token of the session, read from the first page that carried one.
    pub csrf: Option<String>,
}

impl AdminPages {
    /// A browser that has not signed in.
    pub fn anonymous(base: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
            csrf: None,
        }
    }

    /// Sign in through the login form; panics unless the server sends the browser on.
    pub async fn sign_in(base: &str, user: &str, password: &str) -> Self {
        let mut pages = Self::anonymous(base);
        let page = pages
            .post_plain(
                "/admin/login",
                &[("username", user), ("password", password)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        assert!(pages.cookie.is_some(), "signing in sets the session cookie");
        pages
    }

    fn remember(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap().to_owned();
            if pair.starts_with("ph_session=") {
                self.cookie = (pair != "ph_session=").then_some(pair);
            }
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        }
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        self.remember(&response);
        let page = Page::read(response).await;
        if let Some(token) = page.input_value("csrf") {
            self.csrf = Some(token);
        }
        page
    }

    /// GET `path`.
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.with_cookie(self.client.get(format!("{}{path}", self.base)));
        let response = request.send().await.unwrap();
        self.finish(response).await
    }

    /// POST a URL-encoded form with the session's CSRF token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self
            .csrf
            .clone()
            .expect("a page with a CSRF token was read first");
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_plain(path, &all).await
    }

    /// POST a URL-encoded form exactly as given (no token added).
    pub async fn post_plain(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .with_cookie(self.client.post(format!("{}{path}", self.base)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let response = request.send().await.unwrap();
        self.finish(response).await
    }

    /// Upload `bytes` as `file_name` through the plugins page's form (`csrf` given explicitly).
    pub async fn upload(&mut self, file_name: &str, bytes: Vec<u8>, csrf: Option<&str>) -> Page {
        let mut form = reqwest::multipart::Form::new();
        if let Some(token) = csrf {
            form = form.text("csrf", token.to_owned());
        }
        let part = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned());
        form = form.part("plugin", part);
        let request = self
            .with_cookie(self.client.post(format!("{}/admin/plugins", self.base)))
            .multipart(form);
        let response = request.send().await.unwrap();
        self.finish(response).await
    }
}
