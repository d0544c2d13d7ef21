//! Chat templates rendered by swift (minijinja) against the strings
//! transformers' `apply_chat_template` produced for the same template,
//! messages and options (fixtures/templates/expected.json, made by
//! fixtures/templates/make_expected.py).

mod common;

use common::{read_json, root};
use swift::tokenizer::{ChatTemplate, RenderOptions};

fn template(name: &str) -> ChatTemplate {
    if let Some(b) = name.strip_prefix("builtin:") {
        ChatTemplate::builtin(b).unwrap()
    } else if let Some(f) = name.strip_prefix("fixture:") {
        let p = root().join(format!("fixtures/templates/{f}.jinja"));
        ChatTemplate::new(&std::fs::read_to_string(&p).unwrap()).unwrap()
    } else {
        panic!("bad template name {name}")
    }
}

fn run_cases(filter: impl Fn(&str) -> bool) -> usize {
    let doc = read_json(&root().join("fixtures/templates/expected.json"));
    let mut failures = Vec::new();
    let mut n = 0;
    for c in doc["cases"].as_array().unwrap() {
        let name = c["template"].as_str().unwrap();
        if !filter(name) {
            continue;
        }
        n += 1;
        let t = template(name);
        let conv = c["conversation"].as_str().unwrap();
        let messages = doc["conversations"][conv].as_array().unwrap();
        let opts = RenderOptions {
            add_generation_prompt: c["add_generation_prompt"].as_bool().unwrap(),
            special_tokens: c["special_tokens"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            tools: if c["tools"].is_null() {
                None
            } else {
                Some(c["tools"].clone())
            },
            extra: c["kwargs"].as_object().unwrap().clone(),
        };
        let got = t.render(messages, &opts);
        let label = format!(
            "{name} / {conv} / gen={} / {}",
            opts.add_generation_prompt, c["kwargs"]
        );
        match (&got, c["expected"].as_str(), c["error"].as_str()) {
            (Ok(g), Some(want), _) if g == want => {}
            (Ok(g), Some(want), _) => {
                failures.push(format!("{label}\n  want {want:?}\n  got  {g:?}"))
            }
            (Err(e), None, Some(msg)) if format!("{e:#}").contains(msg) => {}
            (Err(e), _, _) => failures.push(format!("{label}\n  error {e:#}\n  want {c}")),
            (Ok(g), None, _) => failures.push(format!("{label}\n  expected an error, got {g:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

#[test]
fn builtin_templates_match_transformers() {
    let n = run_cases(|name| name.starts_with("builtin:"));
    assert!(n >= 100, "only {n} cases");
}

#[test]
fn fixture_templates_match_transformers() {
    let n = run_cases(|name| name.starts_with("fixture:"));
    assert!(n >= 20, "only {n} cases");
}

#[test]
fn every_builtin_has_expected_strings() {
    let p = root().join("fixtures/templates/expected.json");
    let text = std::fs::read_to_string(&p).unwrap();
    for name in ChatTemplate::builtin_names() {
        assert!(
            text.contains(&format!("\"builtin:{name}\"")),
            "no expected strings for built-in {name}: run fixtures/templates/make_expected.py"
        );
    }
}

#[test]
fn expected_strings_are_fresh() {
    // expected.json records the sources it was made from; a template edited
    // since then needs fixtures/templates/make_expected.py rerun.
    let doc = read_json(&root().join("fixtures/templates/expected.json"));
    for (name, src) in doc["sources"].as_object().unwrap() {
        assert_eq!(
            template(name).source(),
            src.as_str().unwrap(),
            "{name} changed since expected.json was made: run fixtures/templates/make_expected.py"
        );
    }
}
