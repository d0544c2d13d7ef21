//! `just gen`: regenerate the committed shell completions and man pages from
//! the clap tree.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (rel, bytes) in swift::cli::generated_files() {
        let path = root.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, bytes)?;
        println!("wrote {rel}");
    }
    Ok(())
}
