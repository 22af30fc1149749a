//! The base URL the key is sent to: how it is written, checked, and
//! defaulted. A manifest's `[run] base_url` can set it, so every check
//! here is about not sending the key somewhere it should not go: no
//! credentials or query in the URL, no plain `http://` across a network.

use url::Url;

use crate::job::Provider;

use super::SettingsError;

/// The reference provider's public host; see API.md. Each provider has its
/// own ([`Provider::default_base_url`]); this is udioapi's.
pub const DEFAULT_BASE_URL: &str = "https://udioapi.pro";

/// The base URL a command uses: the one given (flag, environment or
/// `[run]`), else the provider's own. The one place that default applies.
pub fn base_url_or_default(given: Option<&str>, provider: Provider) -> &str {
    given.unwrap_or(provider.default_base_url())
}

/// Refuses a base URL on a host known to speak another provider's schema:
/// every request would get an answer in a language batchgen is not
/// reading, and the run would fail row by row (or, worse, read an error
/// as something else). The message says which `--provider` the host
/// speaks.
///
/// # Errors
/// A message naming the host, its provider and the setting to change.
pub fn check_provider_host(url: &Url, provider: Provider) -> Result<(), SettingsError> {
    let Some(host) = url.host_str() else {
        return Ok(());
    };
    match Provider::owner_of_host(host) {
        Some(owner) if owner != provider => Err(SettingsError::OtherProvidersHost {
            host: host.to_owned(),
            owner,
            provider,
        }),
        _ => Ok(()),
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Refuses to send the key in clear text across a network: `http://` is
/// accepted only to this machine, or with `--allow-insecure-http`.
///
/// # Errors
/// A message naming the host and the flag.
pub fn check_transport(url: &Url, allow_insecure_http: bool) -> Result<(), SettingsError> {
    if url.scheme() == "http" && !is_loopback(url) && !allow_insecure_http {
        return Err(SettingsError::Insecure(crate::util::redact::url(url)));
    }
    Ok(())
}

/// Checks a base URL: absolute http(s), no user name or password, no
/// query; a trailing slash is fine.
///
/// A `user:password@` would go out as a second `Authorization` header
/// (`Basic`, beside the key's `Bearer`), which hosts and proxies may read
/// first, and a query would be dropped from every endpoint: both are
/// refused rather than half-used. Messages show the URL without its user
/// info and query values ([`crate::util::redact::url`]).
pub fn parse_base_url(s: &str) -> Result<Url, SettingsError> {
    let typed = crate::util::redact::text(&without_userinfo(s)).into_owned();
    let invalid = |why: String| SettingsError::BaseUrl {
        shown: typed.clone(),
        why,
    };
    let url = Url::parse(s.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("expected http(s)://host[:port]".into()));
    }
    let shown = crate::util::redact::url(&url);
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SettingsError::Credentials(shown));
    }
    if url.query().is_some() {
        return Err(SettingsError::Query(shown));
    }
    Ok(url)
}

/// `s` with anything between `://` and the last `@` of its authority cut,
/// for a message about a URL that does not parse.
fn without_userinfo(s: &str) -> String {
    let Some(start) = s.find("://").map(|i| i + 3) else {
        return s.to_owned();
    };
    let authority_end = s[start..]
        .find(['/', '?', '#'])
        .map_or(s.len(), |i| start + i);
    match s[start..authority_end].rfind('@') {
        Some(at) => format!("{}…{}", &s[..start], &s[start + at..]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_of_another_provider_gets_a_hint() {
        let url = |s| Url::parse(s).unwrap();
        let e = check_provider_host(&url("https://api.kie.ai"), Provider::Udioapi)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--provider kie") && e.contains("api.kie.ai"),
            "{e}"
        );
        let e = check_provider_host(&url("https://udioapi.pro/"), Provider::Gcui)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--provider udioapi"), "{e}");
        for (u, p) in [
            ("https://api.sunoapi.org", Provider::Sunoapi),
            ("https://giftasong.udioapi.pro", Provider::Udioapi),
            ("http://127.0.0.1:3000", Provider::Udioapi),
            ("http://127.0.0.1:3000", Provider::Gcui),
        ] {
            assert_eq!(check_provider_host(&url(u), p), Ok(()), "{u} {p}");
        }
        for &p in Provider::ALL {
            let default = base_url_or_default(None, p);
            assert_eq!(check_provider_host(&url(default), p), Ok(()), "{p}");
        }
    }

    #[test]
    fn plain_http_is_only_for_this_machine_unless_allowed() {
        let u = |s: &str| Url::parse(s).unwrap();
        for ok in [
            "https://udioapi.pro",
            "http://127.0.0.1:9/",
            "http://127.3.4.5/",
            "http://localhost:8080",
            "http://api.localhost/",
            "http://[::1]:80/",
        ] {
            assert!(check_transport(&u(ok), false).is_ok(), "{ok}");
        }
        for bad in [
            "http://udioapi.pro",
            "http://10.0.0.2/",
            "http://localhost.evil.com/",
        ] {
            let e = check_transport(&u(bad), false).unwrap_err().to_string();
            assert!(e.contains("--allow-insecure-http"), "{e}");
            assert!(check_transport(&u(bad), true).is_ok());
        }
        let e = check_transport(&u("http://me:pw@evil.example/"), false)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn base_urls_carry_no_credentials_or_query_and_errors_do_not_echo_them() {
        assert!(parse_base_url("https://h.example/proxy/").is_ok());
        for bad in [
            "https://me:pw-0123456789@h.example/",
            "https://pw-0123456789@h.example/",
            "https://h.example/?token=pw-0123456789",
            "https://me:pw-0123456789@h.example:99999/",
            "ftp://me:pw-0123456789@h.example/",
        ] {
            let e = parse_base_url(bad).unwrap_err().to_string();
            assert!(!e.contains("pw-0123456789"), "{bad}: {e}");
            assert!(e.contains("h.example"), "{bad}: {e}");
        }
    }
}
