// Tree administration forms: a refusal from the server names the field it
// concerns (data-field); that input is marked and focused, and unmarked
// once it is changed.
(function () {
  'use strict';

  document.addEventListener('htmx:afterSwap', function (e) {
    var form = e.target.closest('form');
    if (!form) return;
    form.querySelectorAll('[aria-invalid]').forEach(function (i) { i.removeAttribute('aria-invalid'); });
    var alert = e.target.querySelector('.alert[data-field]');
    if (!alert) return;
    var input = form.querySelector('[name="' + alert.getAttribute('data-field') + '"]');
    if (!input) return;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  });

  document.addEventListener('input', function (e) {
    if (e.target.getAttribute && e.target.getAttribute('aria-invalid')) e.target.removeAttribute('aria-invalid');
  });
})();
