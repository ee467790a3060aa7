//! Secret providers: `{ secret: "<provider>:<path>#<field>" }` is resolved by a program that
//! connctl.toml declares (`[secrets.<provider>]`, never the YAML a pull request can change):
//! an argument list run without a shell, or a preset for Vault, AWS Secrets Manager, GCP
//! Secret Manager, Azure Key Vault, 1Password or SOPS.
//!
//! Each reference is resolved at most once per run, and only when a connection that needs it
//! is fingerprinted or sent. The program runs with `IMMUTA_*` / `CONNCTL_*` removed from its
//! environment, no standard input and a timeout; its standard output (one trailing newline
//! removed) is the value; its standard error is never shown, since it may hold the value.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::secret::{Secret, SecretError};

/// How long a provider may run when connctl.toml sets no `timeout_secs`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest value read from a provider (64 KiB), as for a secret file.
const MAX_OUTPUT: u64 = 64 * 1024;

/// `[secrets.<provider>]` in connctl.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The program and its arguments; `{path}` and `{field}` are replaced in each argument.
    pub command: Option<Vec<String>>,
    /// Or one of the built-in programs.
    pub preset: Option<Preset>,
    /// Seconds the program may run (default 30).
    pub timeout_secs: Option<u64>,
    /// vault: the KV mount (`-mount=`).
    pub mount: Option<String>,
    /// aws: `--region`.
    pub region: Option<String>,
    /// aws: `--endpoint-url` (a Secrets Manager compatible endpoint).
    pub endpoint_url: Option<String>,
    /// gcp: `--project`.
    pub project: Option<String>,
    /// azure: the Key Vault name (`--vault-name`), required.
    pub vault: Option<String>,
}

/// The built-in providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Vault,
    Aws,
    Gcp,
    Azure,
    #[serde(rename = "1password")]
    OnePassword,
    Sops,
}

impl ProviderConfig {
    /// Exactly one of `command` and `preset`, with the preset's required options.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.command, self.preset) {
            (Some(_), Some(_)) => Err("has both `command` and `preset`; keep one".into()),
            (None, None) => Err("needs `command = [\"prog\", \"{path}\"]` or `preset = \"vault\"` (aws, gcp, azure, 1password, sops)".into()),
            (Some(c), None) if c.is_empty() => Err("`command` is empty".into()),
            (None, Some(Preset::Azure)) if self.vault.is_none() => {
                Err("preset `azure` needs `vault = \"NAME\"` (the Key Vault)".into())
            }
            _ => Ok(()),
        }
    }

    /// The argument list for `path` and `field` (`base`: connctl.toml's folder, for SOPS files).
    fn argv(&self, path: &str, field: Option<&str>, base: &Path) -> Result<Vec<String>, String> {
        let s = |v: &str| v.to_owned();
        if let Some(command) = &self.command {
            return Ok(command
                .iter()
                .map(|a| a.replace("{path}", path).replace("{field}", field.unwrap_or("")))
                .collect());
        }
        let need_field = || field.ok_or_else(|| "this provider needs `#field` after the path".to_owned());
        Ok(match self.preset {
            Some(Preset::Vault) => {
                let mut v = vec![s("vault"), s("kv"), s("get")];
                v.extend(self.mount.as_ref().map(|m| format!("-mount={m}")));
                v.push(format!("-field={}", need_field()?));
                v.push(s(path));
                v
            }
            Some(Preset::Aws) => {
                let mut v = vec![
                    s("aws"),
                    s("secretsmanager"),
                    s("get-secret-value"),
                    s("--secret-id"),
                    s(path),
                ];
                v.extend([s("--query"), s("SecretString"), s("--output"), s("text")]);
                if let Some(r) = &self.region {
                    v.extend([s("--region"), r.clone()]);
                }
                if let Some(e) = &self.endpoint_url {
                    v.extend([s("--endpoint-url"), e.clone()]);
                }
                v
            }
            Some(Preset::Gcp) => {
                let mut v = vec![s("gcloud"), s("secrets"), s("versions"), s("access"), s("latest")];
                v.push(format!("--secret={path}"));
                v.extend(self.project.as_ref().map(|p| format!("--project={p}")));
                v
            }
            Some(Preset::Azure) => vec![
                s("az"),
                s("keyvault"),
                s("secret"),
                s("show"),
                s("--vault-name"),
                self.vault.clone().unwrap_or_default(),
                s("--name"),
                s(path),
                s("--query"),
                s("value"),
                s("-o"),
                s("tsv"),
            ],
            Some(Preset::OnePassword) => {
                let reference = match field {
                    Some(f) => format!("op://{path}/{f}"),
                    None => format!("op://{path}"),
                };
                vec![s("op"), s("read"), reference]
            }
            Some(Preset::Sops) => {
                let extract: String = need_field()?.split('.').map(|k| format!("[\"{k}\"]")).collect();
                let file = if Path::new(path).is_relative() {
                    base.join(path)
                } else {
                    PathBuf::from(path)
                };
                vec![
                    s("sops"),
                    s("decrypt"),
                    s("--extract"),
                    extract,
                    file.to_string_lossy().into_owned(),
                ]
            }
            None => return Err("no command".into()),
        })
    }

    /// Whether `#field` selects a field of a JSON object the program prints (AWS and GCP store
    /// one secret string, often a JSON object).
    fn selects_json_field(&self) -> bool {
        matches!(self.preset, Some(Preset::Aws | Preset::Gcp))
    }
}

/// `provider:path#field`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRef<'a> {
    pub provider: &'a str,
    pub path: &'a str,
    pub field: Option<&'a str>,
}

impl<'a> ProviderRef<'a> {
    pub fn parse(text: &'a str) -> Result<ProviderRef<'a>, String> {
        let (provider, rest) = text
            .split_once(':')
            .ok_or_else(|| "is not `<provider>:<path>#<field>`".to_owned())?;
        if provider.is_empty()
            || !provider
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err("does not start with a provider name (`vault:`, `aws:`, …)".into());
        }
        let (path, field) = match rest.rsplit_once('#') {
            Some((p, f)) => (p, Some(f).filter(|f| !f.is_empty())),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err("has no path after the provider".into());
        }
        Ok(ProviderRef {
            provider,
            path,
            field,
        })
    }
}

struct Registry {
    providers: BTreeMap<String, ProviderConfig>,
    base: PathBuf,
    /// Values resolved this run, by reference.
    cache: HashMap<String, Secret>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            providers: BTreeMap::new(),
            base: PathBuf::from("."),
            cache: HashMap::new(),
        })
    })
}

/// Declares the providers of this run (from connctl.toml, whose folder is `base`).
pub fn install(providers: BTreeMap<String, ProviderConfig>, base: &Path) {
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.providers = providers;
    r.base = base.to_path_buf();
    r.cache.clear();
}

/// The value of `reference` (`provider:path#field`), run at most once per run.
pub(crate) fn resolve(reference: &str) -> Result<Secret, SecretError> {
    let failed = |reason: String| SecretError::Provider {
        reference: reference.to_owned(),
        reason,
    };
    let parsed = ProviderRef::parse(reference).map_err(|r| failed(format!("the reference {r}")))?;
    // The lock is held while the program runs: one resolution per reference, even when
    // several connections share it.
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(secret) = r.cache.get(reference) {
        return Ok(secret.clone());
    }
    let Some(config) = r.providers.get(parsed.provider).cloned() else {
        let known: Vec<&str> = r.providers.keys().map(String::as_str).collect();
        return Err(failed(format!(
            "no provider `{}` is declared in connctl.toml ([secrets.{}]){}",
            parsed.provider,
            parsed.provider,
            if known.is_empty() {
                String::new()
            } else {
                format!("; declared: {}", known.join(", "))
            }
        )));
    };
    let argv = config.argv(parsed.path, parsed.field, &r.base).map_err(failed)?;
    let timeout = config.timeout_secs.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let output = run(&argv, timeout).map_err(failed)?;
    let value = if config.selects_json_field()
        && let Some(field) = parsed.field
    {
        json_field(&output, field).map_err(failed)?
    } else {
        output
    };
    if value.is_empty() {
        return Err(failed(format!("`{}` printed nothing", argv[0])));
    }
    let secret = Secret::new(value);
    r.cache.insert(reference.to_owned(), secret.clone());
    Ok(secret)
}

/// Runs `argv` without a shell; its standard output minus one trailing newline.
fn run(argv: &[String], timeout: Duration) -> Result<String, String> {
    let program = &argv[0];
    let mut command = Command::new(program);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("IMMUTA_") || text.starts_with("CONNCTL_") {
            command.env_remove(&name);
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {}", e.kind()))?;
    let out = child.stdout.take().map(|o| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = o.take(MAX_OUTPUT + 1).read_to_end(&mut bytes);
            bytes
        })
    });
    // Drained (so the program cannot block on a full pipe) and dropped unread.
    let err = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut e.take(1 << 20), &mut std::io::sink());
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{program}` did not finish within {} s",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for `{program}`: {}", e.kind())),
        }
    };
    let bytes = out.and_then(|t| t.join().ok()).unwrap_or_default();
    if let Some(t) = err {
        let _ = t.join();
    }
    if !status.success() {
        return Err(format!(
            "`{program}` failed ({status}); its error output is not shown, since it may hold a value"
        ));
    }
    if bytes.len() as u64 > MAX_OUTPUT {
        return Err(format!("`{program}` printed more than {} KiB", MAX_OUTPUT / 1024));
    }
    let mut text =
        String::from_utf8(bytes).map_err(|_| format!("`{program}` printed something that is not UTF-8"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// The string under `field` of the JSON object `text` (never quoting `text`).
fn json_field(text: &str, field: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| format!("`#{field}` names a field, but the secret is not a JSON object"))?;
    match value.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(v.to_string()),
        _ => Err(format!("the secret has no text field `{field}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_into_provider_path_and_field() {
        assert_eq!(
            ProviderRef::parse("vault:kv/immuta/prod#password"),
            Ok(ProviderRef {
                provider: "vault",
                path: "kv/immuta/prod",
                field: Some("password")
            })
        );
        assert_eq!(ProviderRef::parse("op:Vault/Item").map(|r| r.field), Ok(None));
        assert!(ProviderRef::parse("no-colon").is_err());
        assert!(ProviderRef::parse("vault:#x").is_err());
        assert!(ProviderRef::parse(":path").is_err());
    }

    #[test]
    fn presets_build_their_argument_lists() {
        let base = Path::new("/cfg");
        let preset = |p: Preset| ProviderConfig {
            preset: Some(p),
            vault: Some("kv1".into()),
            ..Default::default()
        };
        let argv = |p: Preset, f: Option<&str>| preset(p).argv("a/b", f, base).unwrap().join(" ");
        assert_eq!(argv(Preset::Vault, Some("pw")), "vault kv get -field=pw a/b");
        assert_eq!(
            argv(Preset::Aws, Some("pw")),
            "aws secretsmanager get-secret-value --secret-id a/b --query SecretString --output text"
        );
        assert_eq!(
            argv(Preset::Gcp, None),
            "gcloud secrets versions access latest --secret=a/b"
        );
        assert_eq!(
            argv(Preset::Azure, None),
            "az keyvault secret show --vault-name kv1 --name a/b --query value -o tsv"
        );
        assert_eq!(
            argv(Preset::OnePassword, Some("password")),
            "op read op://a/b/password"
        );
        assert_eq!(
            argv(Preset::Sops, Some("sf.password")),
            r#"sops decrypt --extract ["sf"]["password"] /cfg/a/b"#
        );
        assert!(preset(Preset::Vault).argv("a", None, base).is_err());
        let command = ProviderConfig {
            command: Some(vec!["get".into(), "{path}".into(), "--f={field}".into()]),
            ..Default::default()
        };
        assert_eq!(command.argv("p", Some("f"), base).unwrap(), ["get", "p", "--f=f"]);
    }

    #[test]
    fn a_json_field_is_selected_without_quoting_the_secret() {
        assert_eq!(
            json_field(r#"{"password":"s3cr3t-value"}"#, "password").unwrap(),
            "s3cr3t-value"
        );
        let e = json_field("s3cr3t-value", "password").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = json_field(r#"{"other":"s3cr3t-value"}"#, "password").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
