//! Embeds the bundled example agents (`examples/*.js` at the repository's
//! root) for the dashboard's Examples list: `$OUT_DIR/examples.rs` is a
//! sorted `&[(name, include_str!(path))]`.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("..").join("examples");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "js") && p.is_file())
                .filter_map(|p| {
                    let name = p.file_stem()?.to_str()?.to_string();
                    let abs = p.canonicalize().ok()?.to_str()?.to_string();
                    Some((name, abs))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("&[\n");
    for (name, path) in &files {
        println!("cargo:rerun-if-changed={path}");
        out.push_str(&format!("    ({name:?}, include_str!({path:?})),\n"));
    }
    out.push(']');
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("examples.rs");
    std::fs::write(dest, out).expect("writing examples.rs");
}
