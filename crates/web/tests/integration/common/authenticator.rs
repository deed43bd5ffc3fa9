//! A software WebAuthn authenticator with its client for the JSON API's passkey ceremonies:
//! one ES256 (ECDSA P-256) credential, "none" attestation, user verification as configured,
//! and a signature counter. It answers the options the server sends (`{"publicKey": …}`) with
//! the JSON a platform's `PublicKeyCredential.toJSON()` gives, so the server's WebAuthn
//! verification (webauthn-rs) runs for real: the challenge, origin, RP id hash, flags,
//! signature and counter all come from here.
//!
//! Like a browser, it refuses options for another RP id, and an assertion request that does not
//! list its credential; like a careless client, it does not honour `excludeCredentials` (the
//! server must).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Authenticator data flags (WebAuthn §6.1).
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
pub const AT: u8 = 0x40;

/// One credential on a software authenticator. `Clone` copies the private key: the clone
/// detection of the signature counter can be tested with it.
#[derive(Clone)]
pub struct Authenticator {
    key: SigningKey,
    pub cred_id: Vec<u8>,
    /// The signature counter, incremented before each assertion (0 at registration).
    pub counter: u32,
    /// Flags besides UP and AT (set `UV` for a verified user; `BE | BS` for a synced passkey).
    pub flags: u8,
    /// The origin the "browser" puts in clientDataJSON.
    pub origin: String,
    /// The RP id this authenticator answers for (the origin's host).
    pub rp_id: String,
    /// `user.id` of the registration, returned as `userHandle`.
    user_handle: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn new_key() -> SigningKey {
    loop {
        if let Ok(k) = SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
            return k;
        }
    }
}

impl Authenticator {
    /// A user-verifying authenticator for `origin` (e.g. `http://localhost:8080`).
    pub fn new(origin: &str) -> Authenticator {
        let url = reqwest::Url::parse(origin).expect("origin");
        Authenticator {
            key: new_key(),
            cred_id: rand::random::<[u8; 32]>().to_vec(),
            counter: 0,
            flags: UV,
            origin: origin.trim_end_matches('/').to_string(),
            rp_id: url.host_str().expect("host").to_string(),
            user_handle: Vec::new(),
        }
    }

    /// Another private key under the same credential id (an attacker's guess).
    pub fn with_other_key(&self) -> Authenticator {
        Authenticator { key: new_key(), ..self.clone() }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .expect("clientDataJSON")
    }

    /// COSE_Key of the public key: EC2, ES256, P-256 (RFC 9053).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        assert_eq!((bytes.len(), bytes[0]), (65, 4), "uncompressed SEC1 point");
        let map: BTreeMap<Cbor, Cbor> = [
            (Cbor::Integer(1), Cbor::Integer(2)),  // kty: EC2
            (Cbor::Integer(3), Cbor::Integer(-7)), // alg: ES256
            (Cbor::Integer(-1), Cbor::Integer(1)), // crv: P-256
            (Cbor::Integer(-2), Cbor::Bytes(bytes[1..33].to_vec())),
            (Cbor::Integer(-3), Cbor::Bytes(bytes[33..65].to_vec())),
        ]
        .into_iter()
        .collect();
        serde_cbor_2::to_vec(&Cbor::Map(map)).expect("cbor")
    }

    fn auth_data(&self, flags: u8, attested: bool) -> Vec<u8> {
        let mut d = sha256(self.rp_id.as_bytes()).to_vec();
        d.push(UP | flags | if attested { AT } else { 0 });
        d.extend_from_slice(&self.counter.to_be_bytes());
        if attested {
            d.extend_from_slice(&[0u8; 16]); // AAGUID
            d.extend_from_slice(&u16::try_from(self.cred_id.len()).expect("id length").to_be_bytes());
            d.extend_from_slice(&self.cred_id);
            d.extend_from_slice(&self.cose_key());
        }
        d
    }

    /// `navigator.credentials.create()`: the `RegisterPublicKeyCredential` JSON for the
    /// creation options `options` (`{"publicKey": …}`).
    pub fn create(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        assert_eq!(pk["rp"]["id"].as_str(), Some(self.rp_id.as_str()), "RP id: {options}");
        assert!(
            pk["pubKeyCredParams"].as_array().is_some_and(|a| a.iter().any(|p| p["alg"] == -7)),
            "ES256 allowed: {options}"
        );
        let challenge = pk["challenge"].as_str().expect("challenge");
        self.user_handle = URL_SAFE_NO_PAD.decode(pk["user"]["id"].as_str().expect("user.id")).expect("user.id b64");
        let client_data = self.client_data("webauthn.create", challenge);
        let mut att = BTreeMap::new();
        att.insert(Cbor::Text("fmt".into()), Cbor::Text("none".into()));
        att.insert(Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new()));
        att.insert(Cbor::Text("authData".into()), Cbor::Bytes(self.auth_data(self.flags, true)));
        let attestation_object = serde_cbor_2::to_vec(&Cbor::Map(att)).expect("cbor");
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation_object),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get()`: the `PublicKeyCredential` JSON for the request options
    /// `options` (`{"publicKey": …}`); the counter goes up by one.
    pub fn get(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        assert_eq!(pk["rpId"].as_str(), Some(self.rp_id.as_str()), "RP id: {options}");
        let mine = b64(&self.cred_id);
        assert!(
            pk["allowCredentials"].as_array().is_some_and(|a| a.iter().any(|c| c["id"].as_str() == Some(&mine))),
            "the options list this credential: {options}"
        );
        let challenge = pk["challenge"].as_str().expect("challenge");
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", challenge);
        let auth_data = self.auth_data(self.flags, false);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": mine,
            "rawId": mine,
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}
