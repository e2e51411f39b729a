// The field app's report form: 即报即办 is offered only for the categories
// (and urgencies) that allow it; choosing it shows what was done and the
// photos after the work.
(function () {
  function sync(form) {
    var box = form.querySelector('#on_spot');
    if (!box) return;
    var select = form.querySelector('select[name=category_code]');
    var urgent = form.querySelector('input[name=urgent]');
    var option = select && select.selectedOptions[0];
    var rule = (option && option.dataset.onSpot) || 'none';
    var allowed = rule === 'any' || (rule === 'normal' && !(urgent && urgent.checked));
    box.disabled = !allowed;
    if (!allowed) box.checked = false;
    var hint = form.querySelector('#onspot-hint');
    if (hint) hint.textContent = allowed ? hint.dataset.on : hint.dataset.off;
    var fields = form.querySelector('.onspot-fields');
    if (fields) fields.hidden = !box.checked;
    var result = form.querySelector('textarea[name=result]');
    if (result) result.required = box.checked;
    var submit = form.querySelector('#report-submit');
    if (submit) submit.textContent = box.checked ? submit.dataset.onSpot : submit.dataset.report;
  }
  document.addEventListener('change', function (e) {
    var form = e.target.closest && e.target.closest('form');
    if (form && form.querySelector('#on_spot')) sync(form);
  });
  document.addEventListener('DOMContentLoaded', function () {
    var box = document.querySelector('#on_spot');
    if (box && box.form) sync(box.form);
  });
})();
