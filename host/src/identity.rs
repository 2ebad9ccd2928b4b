//! A node's identity: its key pair, drawn fresh from the operating system's random
//! number generator, and random particle ids.
//!
//! The key itself and its peer id (the libp2p peer id of the public key) are
//! [`braid_wire::NodeKey`], which is pure; this module adds what needs randomness. A
//! [`NodeKey`] derefs to the wire key, so it goes wherever one is asked for
//! (`Particle::new_signed`).

use crate::error::HostError;

/// An Ed25519 key pair and the peer id it gives.
#[derive(Clone)]
pub struct NodeKey(braid_wire::NodeKey);

impl NodeKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, HostError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| HostError::Randomness(e.to_string()))?;
        Ok(Self::from_secret(secret))
    }

    /// The key pair of this 32-byte Ed25519 secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        NodeKey(braid_wire::NodeKey::from_secret(secret))
    }
}

impl std::ops::Deref for NodeKey {
    type Target = braid_wire::NodeKey;

    fn deref(&self) -> &braid_wire::NodeKey {
        &self.0
    }
}

impl From<braid_wire::NodeKey> for NodeKey {
    fn from(key: braid_wire::NodeKey) -> Self {
        NodeKey(key)
    }
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The wire key's Debug never prints secret key bytes.
        self.0.fmt(f)
    }
}

/// Refuses a key file that others than its owner may read or write (unix: any of the
/// mode bits 0o077), as ssh does: a node's secret key is its identity.
pub fn check_key_file_mode(path: &std::path::Path) -> Result<(), HostError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| HostError::Config(format!("cannot read {}: {e}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(HostError::Config(format!(
                "the key file {} has mode {:o}: others may read the node's secret key; run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates `dir` and its missing parents, readable only by this user (unix: mode
/// 0700 for the directories it creates).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// 16 random bytes as a UUID v4 text, the conventional particle id.
pub(crate) fn random_uuid() -> Result<String, HostError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| HostError::Randomness(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ() {
        let a = NodeKey::generate().unwrap();
        let b = NodeKey::generate().unwrap();
        assert_ne!(a.peer_id(), b.peer_id());
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.secret())));
    }

    #[cfg(unix)]
    #[test]
    fn key_files_others_may_read_are_refused_and_data_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("braid-identity-{}", random_uuid().unwrap()));
        let data = dir.join("a/b");
        create_private_dir(&data).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.join("a")), 0o700);
        let key = dir.join("node.key");
        std::fs::write(&key, "00").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = check_key_file_mode(&key).unwrap_err().to_string();
        assert!(
            refused.contains("mode 644") && refused.contains("chmod 600"),
            "{refused}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_key_file_mode(&key).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let id = random_uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, random_uuid().unwrap());
    }
}
