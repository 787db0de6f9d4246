// Package receipt: this file owns public keys (Ed25519 or ECDSA P-256 with ASN.1 DER
// signatures) from PEM, their securesystemslib key id, signed-note key ids and DSSE
// envelope verification, mirroring src/attest/keys.rs and src/attest/dsse.rs.
package receipt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Key algorithms.
const (
	Ed25519   = "ed25519"
	EcdsaP256 = "ecdsa-p256"
)

// PublicKey is a key that verifies receipts and checkpoints.
type PublicKey struct {
	Algorithm string
	SPKI      []byte
	PEM       string
	KeyID     string
	ed        ed25519.PublicKey
	ec        *ecdsa.PublicKey
}

func pemBlock(pem string) ([]byte, error) {
	begin := strings.Index(pem, "-----BEGIN ")
	if begin < 0 {
		return nil, errors.New("no PEM block (expected -----BEGIN PUBLIC KEY-----)")
	}
	rest := pem[begin:]
	headerEnd := strings.Index(rest, "-----\n")
	if headerEnd < 0 {
		headerEnd = strings.Index(rest, "-----\r\n")
	}
	if headerEnd < 0 {
		return nil, errors.New("malformed PEM header")
	}
	label := rest[len("-----BEGIN "):headerEnd]
	if label != "PUBLIC KEY" {
		return nil, fmt.Errorf("expected a PUBLIC KEY PEM block, found %q", label)
	}
	end := strings.Index(rest, "-----END ")
	if end < 0 || end < headerEnd+5 {
		return nil, errors.New("PEM block has no END line")
	}
	body := strings.Join(strings.Fields(rest[headerEnd+5:end]), "")
	der, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("PEM body is not base64: %v", err)
	}
	return der, nil
}

func toPEM(der []byte) string {
	b64 := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	b.WriteString("-----BEGIN PUBLIC KEY-----\n")
	for len(b64) > 64 {
		b.WriteString(b64[:64] + "\n")
		b64 = b64[64:]
	}
	b.WriteString(b64 + "\n-----END PUBLIC KEY-----\n")
	return b.String()
}

// olpcCanonical is OLPC canonical JSON of string-only objects: sorted keys, no spaces,
// only '"' and '\' escaped.
func olpcCanonical(v interface{}) string {
	switch t := v.(type) {
	case string:
		return `"` + strings.ReplaceAll(strings.ReplaceAll(t, `\`, `\\`), `"`, `\"`) + `"`
	case map[string]interface{}:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = olpcCanonical(k) + ":" + olpcCanonical(t[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	panic("unsupported value in a key object")
}

// ParsePublicKeyPEM parses a PUBLIC KEY PEM block.
func ParsePublicKeyPEM(pem string) (*PublicKey, error) {
	der, err := pemBlock(pem)
	if err != nil {
		return nil, err
	}
	return ParsePublicKeyDER(der)
}

// ParsePublicKeyDER parses a DER SubjectPublicKeyInfo.
func ParsePublicKeyDER(der []byte) (*PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a supported public key: %v", err)
	}
	pk := &PublicKey{SPKI: append([]byte(nil), der...), PEM: toPEM(der)}
	var obj map[string]interface{}
	switch t := k.(type) {
	case ed25519.PublicKey:
		pk.Algorithm, pk.ed = Ed25519, t
		obj = map[string]interface{}{"keytype": "ed25519", "scheme": "ed25519", "keyval": map[string]interface{}{"public": hex.EncodeToString(t)}}
	case *ecdsa.PublicKey:
		if t.Curve != elliptic.P256() {
			return nil, errors.New("unsupported key type: use ed25519 or ecdsa-p256")
		}
		pk.Algorithm, pk.ec = EcdsaP256, t
		obj = map[string]interface{}{"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": map[string]interface{}{"public": pk.PEM}}
	default:
		return nil, errors.New("unsupported key type: use ed25519 or ecdsa-p256")
	}
	sum := sha256.Sum256([]byte(olpcCanonical(obj)))
	pk.KeyID = hex.EncodeToString(sum[:])
	return pk, nil
}

// Verify reports whether sig is this key's signature of msg.
func (k *PublicKey) Verify(msg, sig []byte) bool {
	if k.ed != nil {
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, msg, sig)
	}
	h := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(k.ec, h[:], sig)
}

// NoteKeyID is the signed-note key id of this key under a key name (the log origin).
func (k *PublicKey) NoteKeyID(name string) uint32 {
	var h [32]byte
	if k.ed != nil {
		b := append([]byte(name), '\n', 1)
		h = sha256.Sum256(append(b, k.ed...))
	} else {
		h = sha256.Sum256(k.SPKI)
	}
	return binary.BigEndian.Uint32(h[:4])
}

// NoteVerifierKey is "name+hexid+base64(0x01 || key)" for Ed25519 keys, "" otherwise.
func (k *PublicKey) NoteVerifierKey(name string) string {
	if k.ed == nil {
		return ""
	}
	return fmt.Sprintf("%s+%08x+%s", name, k.NoteKeyID(name), base64.StdEncoding.EncodeToString(append([]byte{1}, k.ed...)))
}

// PAE is the DSSE v1 pre-authentication encoding.
func PAE(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

// VerifyEnvelope checks that a signature of the envelope was made by a trusted key; it
// returns the key id that verified.
func VerifyEnvelope(env Envelope, expectedType string, trusted []*PublicKey) (string, error) {
	if env.PayloadType != expectedType {
		return "", fmt.Errorf("format: payloadType is %q, expected %q", env.PayloadType, expectedType)
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil {
		return "", fmt.Errorf("format: envelope payload is not base64: %v", err)
	}
	if len(env.Signatures) == 0 {
		return "", errors.New("signature: the envelope has no signatures")
	}
	msg := PAE(env.PayloadType, payload)
	var tried []string
	for _, s := range env.Signatures {
		raw, err := base64.StdEncoding.Strict().DecodeString(s.Sig)
		if err != nil {
			tried = append(tried, fmt.Sprintf("signature with keyid %q is not base64", s.KeyID))
			continue
		}
		matched := false
		for _, k := range trusted {
			if s.KeyID != "" && s.KeyID != k.KeyID {
				continue
			}
			matched = true
			if k.Verify(msg, raw) {
				return k.KeyID, nil
			}
			tried = append(tried, fmt.Sprintf("signature by %s does not verify", k.KeyID))
		}
		if !matched {
			tried = append(tried, fmt.Sprintf("keyid %q is not a trusted key", s.KeyID))
		}
	}
	return "", errors.New("signature: " + strings.Join(tried, "; "))
}
