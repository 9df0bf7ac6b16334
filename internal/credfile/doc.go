// Package credfile reads the few fields credslots needs from a CLI's
// credential document and from an identity sidecar: the access token's
// expiry, the fingerprint of the identity key, and whether a token was
// blanked; it tells whether a document has a format's shape at all
// ([Shape]), and carries the account-independent members of one document
// into another ([CarryState]). It works on bytes already read; the root
// package decides what they mean.
//
// What it guarantees:
//   - A document is validated once, and the members a format needs are
//     found in that same pass (internal/jsonscan's Lookup); only the fields
//     asked for are then decoded: a caller that wants the expiry alone
//     ([Expiry]) pays for no hash and no blank scan, one that wants the
//     identity alone ([Identity]) for no decimal conversion or JWT decoding.
//   - A fingerprint is the lowercase sha256 hex of the identity key's UTF-8
//     bytes, as encoding/json decodes them (invalid UTF-8 becomes U+FFFD);
//     the key itself is never kept, returned or put in a reason.
//   - Expiries are exact (jsonscan's DecimalTime): no float on the way.
//   - It never panics, whatever the input.
//
// What it never does: touch a file, log, keep any of the bytes it is given
// past its return (except the raw sub-slice [Sidecar] returns, which is
// the caller's own memory), rewrite a member it carries
// (values are copied byte for byte), or import anything of credslots but
// internal/jsonscan.
package credfile
