//! The sign-in page and the error page.

use maud::{Markup, html};

use super::{Frame, Section, Viewer, layout};

/// The sign-in form: one password field labelled "Admin token". `refused` after a token
/// was not accepted (the page does not say why).
pub fn sign_in(viewer: &Viewer, refused: bool) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        @if refused {
            p.error role="alert" { "That token was not accepted." }
        }
        form.sign-in method="post" action="/sign-in" {
            label for="token" { "Admin token" }
            input #token type="password" name="token" required autocomplete="current-password";
            button type="submit" { "Sign in" }
        }
        p.hint {
            "The admin token is the one given to " code { "serve --admin-token" }
            " (or " code { "STABLEBUILD_ADMIN_TOKEN" } "); without one, serve makes one and keeps it in the store's "
            code { "server.json" } "."
        }
    };
    layout(Frame::new("Sign in", Section::Other), viewer, body)
}

/// A page for an error: what went wrong, in words.
pub fn error(viewer: &Viewer, title: &str, message: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        p.error role="alert" { (message) }
        p { a href="/" { "Back to the cached tags" } }
    };
    layout(Frame::new(title, Section::Other), viewer, body)
}
