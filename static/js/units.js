// The dispatch form's unit lists (issue 18): one search box narrows the
// lead-unit list and the assisting list at once (options stay grouped as
// 职能部门 / 属地 / 网格), and the chosen assisting units are spelled out
// under the list, since a multiple select hides what is chosen off screen.
// The unit chosen to lead is greyed out among the assisting ones.
(function () {
  'use strict';

  function setup(pick) {
    var search = pick.querySelector('[data-unit-search]');
    var lists = pick.querySelectorAll('[data-unit-list]');
    var assist = pick.querySelector('[data-assist]');
    var chosen = pick.querySelector('[data-assist-chosen]');

    function narrow() {
      var words = (search.value || '').trim();
      lists.forEach(function (list) {
        list.querySelectorAll('optgroup').forEach(function (group) {
          var any = false;
          group.querySelectorAll('option').forEach(function (o) {
            var show = !words || o.selected || o.textContent.indexOf(words) >= 0;
            o.hidden = !show;
            if (show) { any = true; }
          });
          group.hidden = !any;
        });
      });
    }

    function spell() {
      if (!assist || !chosen) { return; }
      var names = Array.prototype.filter.call(assist.options, function (o) { return o.selected; })
        .map(function (o) { return o.textContent; });
      chosen.textContent = names.length ? chosen.dataset.label + names.join('、') : chosen.dataset.none;
    }

    // The unit chosen to lead cannot also assist.
    var lead = pick.querySelector('select[name=lead_unit]');
    function exclude() {
      if (!lead || !assist) { return; }
      Array.prototype.forEach.call(assist.options, function (o) {
        var same = o.value === lead.value;
        o.disabled = same;
        if (same) { o.selected = false; }
      });
      spell();
    }

    if (search) { search.addEventListener('input', narrow); }
    if (assist) { assist.addEventListener('change', spell); }
    if (lead) { lead.addEventListener('change', exclude); }
    exclude();
  }

  function all(root) {
    (root || document).querySelectorAll('[data-unit-pick]').forEach(function (pick) {
      if (pick.dataset.ready) { return; }
      pick.dataset.ready = '1';
      setup(pick);
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { all(); });
  } else {
    all();
  }
  document.addEventListener('htmx:afterSwap', function (e) { all(e.target); });
}());
