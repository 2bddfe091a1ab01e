//! Host and port resolution through the C library's `getaddrinfo`, as the C tools do it:
//! the port may be a service name (`gearman`), and failures carry `gai_strerror`'s exact
//! text (`Name or service not known`), which the drop-in tools print.

use std::ffi::{CStr, CString};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

/// A failed `getaddrinfo`: its `EAI_*` code and `gai_strerror`'s text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaiError {
    /// The `EAI_*` return code (negative on glibc).
    pub code: i32,
    /// `gai_strerror(code)`.
    pub text: String,
}

impl std::fmt::Display for GaiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl GaiError {
    /// Whether the name server timed out (`EAI_AGAIN`), which libgearman reports apart.
    pub fn is_again(&self) -> bool {
        self.code == libc::EAI_AGAIN
    }
}

/// Resolves `host` and `port` (a number or a service name) to TCP addresses, in the order
/// `getaddrinfo` gives them; `Err` holds the code and `gai_strerror`'s text.
///
/// ```
/// let addrs = gearbox_cli::gai::resolve("127.0.0.1", "4730").unwrap();
/// assert_eq!(addrs, vec!["127.0.0.1:4730".parse().unwrap()]);
/// assert!(gearbox_cli::gai::resolve("127.0.0.1", "no-such-service").is_err());
/// ```
pub fn resolve(host: &str, port: &str) -> Result<Vec<SocketAddr>, GaiError> {
    let c_host = CString::new(host).map_err(|_| error(libc::EAI_NONAME))?;
    let c_port = CString::new(port).map_err(|_| error(libc::EAI_SERVICE))?;
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; we then set plain integers.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_protocol = libc::IPPROTO_TCP;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated strings and hints; `list` receives an owned list that
    // is freed below with freeaddrinfo.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), c_port.as_ptr(), &hints, &mut list) };
    if rc != 0 {
        return Err(error(rc));
    }
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` walks the list getaddrinfo returned; each ai_addr points to a
        // sockaddr of the family and length it states.
        unsafe {
            let ai = &*cur;
            if !ai.ai_addr.is_null() {
                match ai.ai_family {
                    libc::AF_INET => {
                        let sa = &*(ai.ai_addr as *const libc::sockaddr_in);
                        let ip = u32::from_be(sa.sin_addr.s_addr);
                        let port = u16::from_be(sa.sin_port);
                        out.push(SocketAddr::V4(SocketAddrV4::new(ip.into(), port)));
                    }
                    libc::AF_INET6 => {
                        let sa = &*(ai.ai_addr as *const libc::sockaddr_in6);
                        let port = u16::from_be(sa.sin6_port);
                        out.push(SocketAddr::V6(SocketAddrV6::new(
                            sa.sin6_addr.s6_addr.into(),
                            port,
                            sa.sin6_flowinfo,
                            sa.sin6_scope_id,
                        )));
                    }
                    _ => {}
                }
            }
            cur = ai.ai_next;
        }
    }
    // SAFETY: frees the list returned by the successful getaddrinfo above, once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(out)
}

fn error(code: i32) -> GaiError {
    // SAFETY: gai_strerror returns a static NUL-terminated string for any code.
    let text = unsafe { CStr::from_ptr(libc::gai_strerror(code)) };
    GaiError {
        code,
        text: text.to_string_lossy().into_owned(),
    }
}
