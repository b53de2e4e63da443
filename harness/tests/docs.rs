//! The documentation (README.md and every page under docs/) against the repository: every
//! relative link leads to a file that exists (and to a heading of it, for `#anchor` links), every
//! repository path it names in backticks exists, and every `cdc-chaos` command it shows — in a
//! code block or in backticks, `cargo run --release -- …` included — parses with the command line
//! the binary has (optional `[…]` parts of a synopsis left out), and every scenario or profile
//! file such a command names exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// README.md and every Markdown file under docs/, as paths relative to the workspace.
fn pages(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut out);
    out.into_iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect()
}

/// What a page holds that can go stale.
#[derive(Default, Debug)]
struct Page {
    links: Vec<String>,
    code_spans: Vec<String>,
    code_block_lines: Vec<String>,
    anchors: BTreeSet<String>,
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn parse_page(text: &str) -> Page {
    let mut page = Page::default();
    let mut heading: Option<String> = None;
    let mut in_code_block = false;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { level, .. }) if level != HeadingLevel::H6 => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take() {
                    page.anchors.insert(anchor(&h));
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => page.links.push(dest_url.to_string()),
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            Event::Text(t) if in_code_block => page.code_block_lines.extend(t.lines().map(str::to_string)),
            Event::Text(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::Code(c) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&c);
                }
                page.code_spans.push(c.to_string());
            }
            _ => {}
        }
    }
    page
}

/// The problems of one page's links: a target that does not exist, or an anchor no heading has.
fn link_problems(root: &Path, page_path: &Path, page: &Page) -> Vec<String> {
    let dir = page_path.parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    for link in &page.links {
        if link.contains("://") || link.starts_with("mailto:") {
            continue;
        }
        let (file, frag) = match link.split_once('#') {
            Some((f, a)) => (f, Some(a)),
            None => (link.as_str(), None),
        };
        let target = if file.is_empty() { page_path.to_path_buf() } else { normalize(&dir.join(file)) };
        let full = root.join(&target);
        if !full.exists() {
            problems.push(format!("{}: link {link:?}: {} does not exist", page_path.display(), target.display()));
            continue;
        }
        if let Some(frag) = frag {
            let anchors = if file.is_empty() { page.anchors.clone() } else { parse_page(&std::fs::read_to_string(&full).unwrap_or_default()).anchors };
            if !anchors.contains(frag) {
                problems.push(format!("{}: link {link:?}: {} has no heading #{frag}", page_path.display(), target.display()));
            }
        }
    }
    problems
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Top-level directories whose paths the docs name in backticks.
const TREES: &[&str] = &["harness/", "pipeline/", "tests/", "docs/", "scenarios/", "profiles/", "manifests/", "docker/", "java/", ".ci/"];

/// A code span that is a repository path (no placeholder, no glob), and does not exist.
fn path_problems(root: &Path, page_path: &Path, page: &Page) -> Vec<String> {
    page.code_spans
        .iter()
        .filter(|c| TREES.iter().any(|t| c.starts_with(t)) && !c.contains(char::is_whitespace))
        .filter(|c| !c.contains(['<', '>', '*', '{', '}', '…']) && !c.contains("..."))
        .filter(|c| !root.join(c.trim_end_matches('/')).exists())
        .map(|c| format!("{}: `{c}` does not exist", page_path.display()))
        .collect()
}

/// A `cdc-chaos` command a page shows.
#[derive(Debug)]
struct Shown {
    /// As written (`cargo run --release -- ` read as `cdc-chaos `, a trailing `# comment` cut).
    line: String,
    /// In a code block: a command to copy, so it must be complete. In a code span it may name a
    /// command in prose (`cdc-chaos replay`), leaving out its required arguments.
    in_block: bool,
}

/// The `cdc-chaos` commands a page shows (an elided one, `…` or `...`, is not a command).
fn commands(page: &Page) -> Vec<Shown> {
    let blocks = page.code_block_lines.iter().map(|l| (l.trim().to_string(), true));
    let spans = page.code_spans.iter().map(|l| (l.clone(), false));
    blocks
        .chain(spans)
        .filter_map(|(l, in_block)| {
            let l = l.split(" # ").next().unwrap().trim().to_string();
            let rest = l.strip_prefix("cargo run --release -- ").or_else(|| l.strip_prefix("cdc-chaos "))?;
            (!rest.contains("...") && !rest.contains('…')).then(|| Shown { line: format!("cdc-chaos {rest}"), in_block })
        })
        .collect()
}

/// Leaves out a synopsis's optional `[…]` parts and its `\|` alternatives' escapes.
fn without_optional_parts(command: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in command.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("\\|", "|")
}

/// Why a command line does not parse, or names a scenario or profile file that is not there.
fn command_problem(root: &Path, shown: &Shown) -> Option<String> {
    let command = shown.line.as_str();
    let line = without_optional_parts(command);
    let Some(args) = shlex::split(&line) else {
        return Some(format!("`{command}`: unbalanced quotes"));
    };
    if args.get(1).map(String::as_str) == Some("pipeline") {
        let args = std::iter::once("cdc-chaos pipeline".to_string()).chain(args.into_iter().skip(2));
        return cdc_pipeline::cli::Cli::try_parse_from(args).err().map(|e| format!("`{command}`: {}", e.to_string().lines().next().unwrap_or_default()));
    }
    if let Err(e) = cdc_chaos::cli::Cli::try_parse_from(&args) {
        use clap::error::ErrorKind;
        let named_only = !shown.in_block && matches!(e.kind(), ErrorKind::MissingRequiredArgument | ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
        if !named_only && !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            return Some(format!("`{command}`: {}", e.to_string().lines().next().unwrap_or_default()));
        }
    }
    args.iter()
        .filter(|a| (a.starts_with("scenarios/") || a.starts_with("profiles/")) && a.ends_with(".toml") && !a.contains('<'))
        .find(|a| !root.join(a).exists())
        .map(|a| format!("`{command}`: {a} does not exist"))
}

fn problems_of(root: &Path, page_path: &Path, text: &str) -> Vec<String> {
    let page = parse_page(text);
    let mut problems = link_problems(root, page_path, &page);
    problems.extend(path_problems(root, page_path, &page));
    problems.extend(commands(&page).iter().filter_map(|c| command_problem(root, c)).map(|p| format!("{}: {p}", page_path.display())));
    problems
}

#[test]
fn every_link_path_and_command_of_the_docs_holds() {
    let root = root();
    let pages = pages(&root);
    assert!(pages.len() >= 8, "README.md and the docs/ pages: {pages:?}");
    let mut problems = Vec::new();
    let mut commands_seen = 0;
    for page in &pages {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        commands_seen += commands(&parse_page(&text)).len();
        problems.extend(problems_of(&root, page, &text));
    }
    assert!(commands_seen >= 20, "the docs show {commands_seen} cdc-chaos commands: is the extraction broken?");
    assert!(problems.is_empty(), "{} problems in the docs:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_readme_stays_short_with_exactly_two_set_up_commands() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(text.len() < 8_000, "README.md is {} bytes: move details into docs/", text.len());
    let page = parse_page(&text);
    let blocks: Vec<&String> = page.code_block_lines.iter().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(blocks, ["cargo run --release -- run scenarios/smoke.toml", "cargo test --workspace"], "the README's two commands");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "cargo test --workspace"), ".ci/run runs the README's test command");
}

#[test]
fn every_file_of_the_run_directory_is_described() {
    let text = std::fs::read_to_string(root().join("docs/scenarios.md")).unwrap();
    let section = text.split("\n## The run directory\n").nth(1).expect("docs/scenarios.md has ## The run directory").split("\n## ").next().unwrap();
    let described: Vec<String> = parse_page(section).code_spans;
    for (file, _) in cdc_chaos::run_dir::RunDir::FILES {
        assert!(described.iter().any(|c| c == file), "docs/scenarios.md, The run directory, does not describe `{file}`");
    }
}

#[test]
fn a_dead_link_a_missing_anchor_a_missing_path_and_a_stale_command_are_reported() {
    let root = root();
    let text = "# Title\n\n## A section\n\nSee [here](docs/nowhere.md), [there](#a-section), [gone](#no-such), \
                [arch](docs/architecture.md#no-heading), `harness/src/no_such.rs`, `harness/src/lib.rs`.\n\n    \
                cdc-chaos run scenarios/smoke.toml\n    cdc-chaos runn scenarios/smoke.toml\n    \
                cdc-chaos run scenarios/none.toml\n    cdc-chaos replay\n\n`cdc-chaos sweep S.toml [--start R] [--factor F \\| --step S]`, `cdc-chaos check --bogus`, \
                `cdc-chaos replay` and `cdc-chaos pipeline ...`\n";
    let problems = problems_of(&root, Path::new("README.md"), text);
    let has = |s: &str| problems.iter().any(|p| p.contains(s));
    assert!(has("docs/nowhere.md does not exist"), "{problems:#?}");
    assert!(has("has no heading #no-such"), "{problems:#?}");
    assert!(has("has no heading #no-heading"), "{problems:#?}");
    assert!(has("`harness/src/no_such.rs` does not exist"), "{problems:#?}");
    assert!(has("`cdc-chaos runn scenarios/smoke.toml`"), "{problems:#?}");
    assert!(has("scenarios/none.toml does not exist"), "{problems:#?}");
    assert!(has("`cdc-chaos check --bogus`"), "{problems:#?}");
    assert!(has("`cdc-chaos replay`: error: the following required arguments"), "a command in a block must be whole: {problems:#?}");
    assert_eq!(problems.len(), 8, "nothing else (a span may name a command, an elided one is none): {problems:#?}");
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(anchor("The run directory"), "the-run-directory");
    assert_eq!(anchor("`result.json`"), "resultjson");
    assert_eq!(anchor("Capacity planning: `cdc-chaos sweep`"), "capacity-planning-cdc-chaos-sweep");
}
