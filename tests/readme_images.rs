//! Every picture README.md shows is a file in the repository, committed to git: a fresh
//! clone shows them all.

use std::path::Path;
use std::process::Command;

/// The targets of `![alt](target)` links in `markdown`, in order.
fn image_links(markdown: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("![") {
        rest = &rest[start + 2..];
        let Some(close) = rest.find("](") else { break };
        let after = &rest[close + 2..];
        let Some(end) = after.find(')') else { break };
        // `![alt](path "title")`: the path is the first word.
        let target = after[..end].split_whitespace().next().unwrap_or("");
        links.push(target.to_string());
        rest = &after[end..];
    }
    links
}

#[test]
fn image_links_are_found() {
    let md = "text ![a](docs/a.png) more ![b c](img/b.png \"title\")\n![](x.svg)";
    assert_eq!(
        image_links(md),
        ["docs/a.png", "img/b.png", "x.svg"].map(String::from)
    );
}

#[test]
fn every_readme_image_exists_and_is_committed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let links: Vec<String> = image_links(&readme)
        .into_iter()
        .filter(|l| !l.starts_with("http://") && !l.starts_with("https://"))
        .collect();
    assert!(!links.is_empty(), "README.md shows no pictures");

    let missing: Vec<&String> = links.iter().filter(|l| !root.join(l).is_file()).collect();
    assert!(
        missing.is_empty(),
        "README.md shows missing files: {missing:?}"
    );

    let in_git = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--is-inside-work-tree"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !in_git {
        eprintln!(
            "SKIPPED the git check: {} is not a git checkout",
            root.display()
        );
        return;
    }
    let untracked: Vec<&String> = links
        .iter()
        .filter(|l| {
            let status = Command::new("git")
                .arg("-C")
                .arg(root)
                .args(["ls-files", "--error-unmatch", "--"])
                .arg(l.as_str())
                .output()
                .expect("running git");
            !status.status.success()
        })
        .collect();
    assert!(
        untracked.is_empty(),
        "README.md shows files that are not committed (a clone would lack them; check \
         .gitignore): {untracked:?}"
    );
}
