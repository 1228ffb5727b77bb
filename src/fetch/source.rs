//! Where bytes come from: a manifest's per-file `urls` (or its own location) resolved into
//! local paths and HTTP(S) URLs, and the rules on which of them may be used.
//!
//! Accepted forms: `https://…`; `http://…` only to a loopback host unless the operator passed
//! the loudly named opt-in; `file://…`; paths relative to the manifest's location (a directory
//! or a URL); and `hf://ORG/REPO@REVISION/PATH`, mapped to `$HF_ENDPOINT/ORG/REPO/resolve/
//! REVISION/PATH` with a full commit hash as revision. This module parses and decides; it does
//! not transfer anything.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use reqwest::Url;

/// Whether plain HTTP may be used beyond loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpPolicy {
    /// `http://` only to 127.0.0.0/8, ::1 or localhost; anything else needs TLS.
    #[default]
    LoopbackOnly,
    /// `--unsafe-allow-http`: plain HTTP anywhere (the digest still protects the bytes, but
    /// not the privacy of what is downloaded).
    UnsafeAllowAnyHost,
}

/// The Hugging Face endpoint and token used for `hf://` sources.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub endpoint: Url,
    /// Sent as `Authorization: Bearer` to the endpoint's host only.
    pub token: Option<String>,
}

impl HubConfig {
    /// `$HF_ENDPOINT` (default the Hugging Face host) and `$HF_TOKEN`.
    pub fn from_env() -> Result<HubConfig, String> {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| "https://huggingface.co".to_owned());
        let endpoint =
            Url::parse(&endpoint).map_err(|error| format!("HF_ENDPOINT `{endpoint}`: {error}"))?;
        let token = std::env::var("HF_TOKEN")
            .ok()
            .filter(|value| !value.is_empty());
        Ok(HubConfig { endpoint, token })
    }
}

/// Where relative sources are resolved from: the manifest's directory or URL.
#[derive(Debug, Clone)]
pub enum Base {
    Dir(PathBuf),
    Url(Url),
}

/// A resolved location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Http(Url),
}

/// A location plus what the server must say about it.
#[derive(Debug, Clone)]
pub struct Source {
    pub location: Location,
    /// As written in the manifest, for messages.
    pub label: String,
    /// For `hf://` sources: the commit the server's `X-Repo-Commit` must name.
    pub hub_revision: Option<String>,
    /// A bearer token to send (only ever for the hub endpoint's own host).
    pub token: Option<String>,
}

/// Parses where a manifest or signature is (a path or a URL given by the operator).
pub fn operator_location(text: &str) -> Result<Location, String> {
    if let Some(url) = parse_url(text)? {
        return Ok(url);
    }
    Ok(Location::File(PathBuf::from(text)))
}

/// The base against which a manifest's relative sources resolve.
pub fn base_of(location: &Location) -> Base {
    match location {
        Location::File(path) => Base::Dir(
            path.parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        ),
        Location::Http(url) => Base::Url(url.clone()),
    }
}

/// Resolves one of a manifest's sources.
pub fn resolve(
    raw: &str,
    base: &Base,
    hub: &HubConfig,
    http: HttpPolicy,
) -> Result<Source, String> {
    let mut source = Source {
        location: Location::File(PathBuf::new()),
        label: raw.to_owned(),
        hub_revision: None,
        token: None,
    };
    if let Some(rest) = raw.strip_prefix("hf://") {
        let (repo, path) = split_hub(rest)?;
        let (repo, revision) = repo
            .rsplit_once('@')
            .ok_or_else(|| "hf:// sources need `ORG/REPO@REVISION/PATH`".to_owned())?;
        if revision.len() != 40
            || !revision
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "hf:// revision `{revision}` is not a full 40-character commit hash"
            ));
        }
        let mut url = hub.endpoint.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}/{repo}/resolve/{revision}/{path}"));
        source.location = Location::Http(url);
        source.hub_revision = Some(revision.to_owned());
        source.token = hub.token.clone();
    } else if let Some(location) = parse_url(raw)? {
        source.location = location;
    } else {
        if raw.starts_with('/') || raw.starts_with('\\') || raw.contains(':') {
            return Err(format!(
                "source `{raw}` is neither a relative path nor a known URL scheme"
            ));
        }
        source.location = match base {
            Base::Dir(dir) => Location::File(dir.join(raw)),
            Base::Url(url) => Location::Http(url.join(raw).map_err(|error| {
                format!("source `{raw}` does not resolve against `{url}`: {error}")
            })?),
        };
    }
    if let Location::Http(url) = &source.location {
        check_http(url, http)?;
        // A token goes only to the hub's own host, never to a mirror.
        if url.host_str() != hub.endpoint.host_str()
            || url.port_or_known_default() != hub.endpoint.port_or_known_default()
        {
            source.token = None;
        }
    }
    Ok(source)
}

/// Whether a URL may be fetched under `policy` (used for redirects too).
pub fn check_http(url: &Url, policy: HttpPolicy) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if policy == HttpPolicy::UnsafeAllowAnyHost || is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "plain http to `{}` is refused (use https, or --unsafe-allow-http)",
            url.host_str().unwrap_or("?")
        )),
        other => Err(format!("scheme `{other}` is not supported")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn parse_url(text: &str) -> Result<Option<Location>, String> {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        let url =
            Url::parse(text).map_err(|error| format!("`{text}` is not a valid URL: {error}"))?;
        return Ok(Some(Location::Http(url)));
    }
    if lower.starts_with("file://") {
        let url =
            Url::parse(text).map_err(|error| format!("`{text}` is not a valid URL: {error}"))?;
        let path = url
            .to_file_path()
            .map_err(|()| format!("`{text}` is not a local file URL"))?;
        return Ok(Some(Location::File(path)));
    }
    Ok(None)
}

fn split_hub(rest: &str) -> Result<(&str, &str), String> {
    // ORG/REPO@REVISION/PATH: the path starts after the third `/`-separated part.
    let mut parts = rest.splitn(3, '/');
    let (Some(org), Some(repo), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("hf:// sources need `ORG/REPO@REVISION/PATH`".into());
    };
    if org.is_empty()
        || repo.is_empty()
        || path.is_empty()
        || path.split('/').any(|part| part == ".." || part.is_empty())
    {
        return Err(format!("hf:// source `{rest}` is malformed"));
    }
    let repo_len = org.len() + 1 + repo.len();
    Ok((rest.get(..repo_len).unwrap_or(rest), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> HubConfig {
        HubConfig {
            endpoint: Url::parse("https://hub.example").unwrap(),
            token: Some("secret".into()),
        }
    }

    #[test]
    fn resolves_relative_paths_urls_and_hub_sources() {
        let base = Base::Dir(PathBuf::from("manifests/demo"));
        let source = resolve(
            "../../fixtures/m.bin",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly,
        )
        .unwrap();
        assert_eq!(
            source.location,
            Location::File(PathBuf::from("manifests/demo/../../fixtures/m.bin"))
        );
        let base = Base::Url(Url::parse("https://models.example/r/manifest.json").unwrap());
        let source = resolve(
            "weights/a.safetensors",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly,
        )
        .unwrap();
        assert_eq!(
            source.location,
            Location::Http(Url::parse("https://models.example/r/weights/a.safetensors").unwrap())
        );
        assert!(source.token.is_none());
        let revision = "0123456789abcdef0123456789abcdef01234567";
        let source = resolve(
            &format!("hf://org/repo@{revision}/sub/model.safetensors"),
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly,
        )
        .unwrap();
        assert_eq!(
            source.location,
            Location::Http(
                Url::parse(&format!(
                    "https://hub.example/org/repo/resolve/{revision}/sub/model.safetensors"
                ))
                .unwrap()
            )
        );
        assert_eq!(source.token.as_deref(), Some("secret"));
        assert_eq!(source.hub_revision.as_deref(), Some(revision));
    }

    #[test]
    fn refuses_plain_http_beyond_loopback_and_short_revisions() {
        let base = Base::Dir(PathBuf::from("."));
        assert!(resolve(
            "http://127.0.0.1:8080/a",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly
        )
        .is_ok());
        assert!(resolve(
            "http://localhost/a",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly
        )
        .is_ok());
        assert!(resolve("http://[::1]/a", &base, &hub(), HttpPolicy::LoopbackOnly).is_ok());
        assert!(resolve(
            "http://example.com/a",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly
        )
        .is_err());
        assert!(resolve(
            "http://example.com/a",
            &base,
            &hub(),
            HttpPolicy::UnsafeAllowAnyHost
        )
        .is_ok());
        assert!(resolve(
            "ftp://example.com/a",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly
        )
        .is_err());
        assert!(resolve(
            "hf://org/repo@main/a",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly
        )
        .is_err());
        assert!(resolve(
            "hf://org/repo@0123456789abcdef0123456789abcdef01234567/../a",
            &base,
            &hub(),
            HttpPolicy::LoopbackOnly
        )
        .is_err());
        assert!(resolve("/etc/passwd", &base, &hub(), HttpPolicy::LoopbackOnly).is_err());
    }
}
