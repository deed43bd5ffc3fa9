// Passkeys (WebAuthn), the only script besides the camera. The page carries the options
// (<script type="application/json" id="passkey-options">) and a plain form; this script asks
// the authenticator and puts its answer, as JSON with base64url fields, into the form's
// `credential` field, then submits the form (CSRF token and all). Without WebAuthn the form
// stays hidden and the page says so; the secret question remains.
(function () {
  'use strict';
  var form = document.querySelector('form[data-passkey]');
  var source = document.getElementById('passkey-options');
  var unsupported = document.querySelector('[data-passkey-unsupported]');
  if (!form || !source) return;
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  form.hidden = false;
  if (unsupported) unsupported.hidden = true;

  function toBuffer(text) {
    var b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = toBuffer(c.id); });
  }

  form.addEventListener('submit', function (event) {
    if (form.elements.credential.value) return;
    event.preventDefault();
    var error = form.querySelector('[data-passkey-error]');
    if (error) error.hidden = true;
    var options = JSON.parse(source.textContent).publicKey;
    options.challenge = toBuffer(options.challenge);
    var ask;
    if (form.dataset.passkey === 'create') {
      options.user.id = toBuffer(options.user.id);
      ids(options.excludeCredentials);
      ask = navigator.credentials.create({ publicKey: options }).then(function (c) {
        return {
          id: c.id,
          rawId: toText(c.rawId),
          type: c.type,
          extensions: c.getClientExtensionResults(),
          response: {
            attestationObject: toText(c.response.attestationObject),
            clientDataJSON: toText(c.response.clientDataJSON),
            transports: c.response.getTransports ? c.response.getTransports() : []
          }
        };
      });
    } else {
      ids(options.allowCredentials);
      ask = navigator.credentials.get({ publicKey: options }).then(function (c) {
        return {
          id: c.id,
          rawId: toText(c.rawId),
          type: c.type,
          extensions: c.getClientExtensionResults(),
          response: {
            authenticatorData: toText(c.response.authenticatorData),
            clientDataJSON: toText(c.response.clientDataJSON),
            signature: toText(c.response.signature),
            userHandle: c.response.userHandle ? toText(c.response.userHandle) : null
          }
        };
      });
    }
    ask.then(function (answer) {
      form.elements.credential.value = JSON.stringify(answer);
      form.submit();
    }).catch(function () {
      if (error) error.hidden = false;
    });
  });
})();
