//! The page shell and small formatting helpers shared by the pages.
//!
//! Every piece of text that goes into a page passes through `escape` here or in the page, except
//! answers, which go through `render::answer_html` (as in the HTML report). Links are built with
//! `url_encode` for their parts and then escaped as attributes. Figures the reports also show are
//! written by `report::format` (seconds, percentages, the dash for a missing value).

use axum::http::StatusCode;
use axum::response::Html;

pub use crate::render::escape;
pub use crate::report::format::percent;
use crate::report::format::{seconds, DASH};

/// A whole page: head, navigation, `body`, and the one script (from `/assets/view.js`, which
/// sets `window.__versusReady` once it has run).
pub fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · versus</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/view.css\">\n</head>\n<body>\n\
         <nav data-testid=\"nav\"><a href=\"/\" class=\"brand\">versus</a> \
         <a href=\"/\" data-testid=\"nav-runs\">Runs</a> \
         <a href=\"/compare\" data-testid=\"nav-compare\">Compare</a> \
         <a href=\"/vote\" data-testid=\"nav-vote\">Vote</a> \
         <a href=\"/ratings\" data-testid=\"nav-ratings\">Ratings</a></nav>\n\
         <main>\n{body}\n</main>\n<script src=\"/assets/view.js\"></script>\n</body>\n</html>\n",
        title = escape(title),
    ))
}

pub fn error_page(status: StatusCode, message: &str) -> Html<String> {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        &format!(
            "<h1>{}</h1>\n<p data-testid=\"error\">{}</p>\n",
            status.as_u16(),
            escape(message)
        ),
    )
}

/// The form that trades the access token for a session cookie. It needs no CSRF token: whoever
/// can submit it knows the token already.
pub fn login_page(message: &str) -> Html<String> {
    layout(
        "Log in",
        &format!(
            "<h1>Log in</h1>\n<p data-testid=\"error\">{}</p>\n\
             <form method=\"post\" action=\"/login\" data-testid=\"login-form\">\n\
             <label>Access token <input type=\"password\" name=\"token\" autocomplete=\"off\" \
             data-testid=\"login-token\" required></label>\n\
             <button type=\"submit\" data-testid=\"login-submit\">Log in</button>\n</form>\n\
             <p>The token was printed when <code>versus view</code> started.</p>\n",
            escape(message)
        ),
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for path segments and query
/// values (task ids and categories are arbitrary strings).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The link to one task of a run.
pub fn task_href(run: i64, task: &str) -> String {
    format!("/runs/{run}/tasks/{}", url_encode(task))
}

/// Plain text in one line, at most `max_chars` characters (with an ellipsis when cut). Not
/// escaped: the caller escapes.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        if count > 0 {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= max_chars {
                out.push('…');
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// A duration: under a second in whole milliseconds, from a second on as the reports write it.
pub fn milliseconds(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms >= 1000.0 => seconds(ms),
        Some(ms) => format!("{ms:.0} ms"),
        None => DASH.into(),
    }
}

pub fn optional(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| DASH.into(), |v| format!("{v:.digits$}"))
}

/// `ISO 8601` timestamps as `2025-01-31 12:00:00`.
pub fn timestamp(text: &str) -> String {
    text.get(..19).unwrap_or(text).replace('T', " ")
}

/// Which slice of a long list a page shows. Pages count from 1.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
}

impl Paging {
    /// The requested page, clamped to the pages there are.
    pub fn new(requested: Option<usize>, per_page: usize, total: usize) -> Paging {
        let per_page = per_page.max(1);
        let pages = total.div_ceil(per_page).max(1);
        Paging {
            page: requested.unwrap_or(1).clamp(1, pages),
            per_page,
            total,
        }
    }

    pub fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }

    pub fn offset(&self) -> usize {
        (self.page - 1) * self.per_page
    }

    /// The index range of this page's items.
    pub fn range(&self) -> std::ops::Range<usize> {
        let start = self.offset().min(self.total);
        start..(start + self.per_page).min(self.total)
    }

    /// Previous/next links and where we are; `link` makes the URL of a page.
    pub fn nav(&self, link: impl Fn(usize) -> String) -> String {
        let mut out = String::from("<nav class=\"pager\" data-testid=\"pager\">");
        if self.page > 1 {
            out.push_str(&format!(
                "<a href=\"{}\" data-testid=\"page-prev\" rel=\"prev\">← previous</a> ",
                escape(&link(self.page - 1))
            ));
        }
        out.push_str(&format!(
            "<span data-testid=\"page-position\">page {} of {} ({} in all)</span>",
            self.page,
            self.pages(),
            self.total
        ));
        if self.page < self.pages() {
            out.push_str(&format!(
                " <a href=\"{}\" data-testid=\"page-next\" rel=\"next\">next →</a>",
                escape(&link(self.page + 1))
            ));
        }
        out.push_str("</nav>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_are_encoded() {
        assert_eq!(url_encode("a b/c?d&e=é"), "a%20b%2Fc%3Fd%26e%3D%C3%A9");
        assert_eq!(task_href(3, "x\"y"), "/runs/3/tasks/x%22y");
    }

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("a\n\n b  c", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    #[test]
    fn paging_clamps() {
        let paging = Paging::new(Some(9), 50, 120);
        assert_eq!(
            (paging.page, paging.pages(), paging.range()),
            (3, 3, 100..120)
        );
        assert_eq!(Paging::new(Some(0), 50, 0).range(), 0..0);
    }
}
