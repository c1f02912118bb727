//! The dashboard: three static files and the bundled example agents, all
//! embedded in the binary (no CDN, nothing read from disk at run time).
//!
//! Invariant: `app.js` builds every element from captured data with
//! `textContent` / text nodes, never by parsing markup; a test keeps any
//! HTML-parsing sink out of the source.

/// The bundled examples (`examples/*.js`), embedded at build time.
pub(crate) static EXAMPLES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/examples.rs"));

const INDEX: &str = include_str!("index.html");
const APP: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");

/// The file for `path` and its content type.
pub(crate) fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX.as_bytes()),
        "/app.js" => ("text/javascript; charset=utf-8", APP.as_bytes()),
        "/style.css" => ("text/css; charset=utf-8", STYLE.as_bytes()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_markup_sinks_in_the_dashboard() {
        for (file, src) in [("app.js", APP), ("index.html", INDEX)] {
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "srcdoc",
            ] {
                assert!(!src.contains(sink), "{file} uses {sink}");
            }
        }
        // Inline script or handlers would be blocked by the CSP anyway.
        assert!(!INDEX.contains("onclick") && !INDEX.contains("<script>"));
    }

    #[test]
    fn examples_are_embedded() {
        let names: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
        assert!(names.len() >= 10, "{names:?}");
        assert!(names.contains(&"packets-per-minute"));
        assert!(EXAMPLES.iter().all(|(_, s)| !s.is_empty()));
    }
}
