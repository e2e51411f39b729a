// Small behaviours shared by console pages. Kept in a file so the CSP can
// forbid inline scripts.
document.addEventListener('DOMContentLoaded', function () {
  // Keep the current node visible inside the tree panel (not the page).
  var panel = document.querySelector('.treepanel');
  var current = document.querySelector('.tree li.current');
  if (panel && current) panel.scrollTop = current.offsetTop - panel.clientHeight / 2;
});

// The dispatch form: the unit chosen to lead cannot also assist.
(function () {
  function sync(select) {
    if (!select.form) return;
    select.form.querySelectorAll('input[name=assisting]').forEach(function (box) {
      var lead = box.value === select.value;
      box.disabled = lead;
      if (lead) box.checked = false;
      box.closest('label').classList.toggle('muted', lead);
    });
  }
  document.addEventListener('change', function (e) {
    if (e.target.matches && e.target.matches('select[name=lead_unit]')) sync(e.target);
  });
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('select[name=lead_unit]').forEach(sync);
  });
})();

// A filter that applies as soon as it is chosen (`data-autosubmit`): the
// CSP forbids inline `onchange` handlers.
document.addEventListener('change', function (e) {
  if (e.target.matches && e.target.matches('select[data-autosubmit]') && e.target.form) e.target.form.submit();
});

// A button that prints the page (`data-print`), e.g. a monthly report to
// paper or, through the browser's print dialog, to PDF.
document.addEventListener('click', function (e) {
  var b = e.target.closest && e.target.closest('[data-print]');
  if (b) { e.preventDefault(); window.print(); }
});
