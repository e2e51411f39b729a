// The resident portal: the report form's community search and location,
// the evaluation's reasons, and 我的反映 (reports made on this device,
// remembered by tracking code in localStorage; no account needed).
(function () {
  var STORE = 'fq.portal.codes';
  var MAX_CODES = 20;

  function savedCodes() {
    try {
      var v = JSON.parse(localStorage.getItem(STORE) || '[]');
      return Array.isArray(v) ? v.filter(function (c) { return typeof c === 'string'; }) : [];
    } catch (e) { return []; }
  }

  function remember(code) {
    var codes = savedCodes().filter(function (c) { return c !== code; });
    codes.unshift(code);
    try { localStorage.setItem(STORE, JSON.stringify(codes.slice(0, MAX_CODES))); } catch (e) { /* private mode */ }
  }

  // The community select filtered by what the resident types.
  function communitySearch(input, select) {
    var all = Array.prototype.map.call(select.querySelectorAll('optgroup'), function (g) {
      return { label: g.label, options: Array.prototype.map.call(g.querySelectorAll('option'), function (o) {
        return { value: o.value, text: o.textContent };
      }) };
    });
    var placeholder = select.querySelector('option[value=""]').textContent;
    input.addEventListener('input', function () {
      var q = input.value.trim();
      var current = select.value;
      select.textContent = '';
      var first = document.createElement('option');
      first.value = '';
      first.textContent = placeholder;
      select.appendChild(first);
      var shown = 0;
      all.forEach(function (g) {
        var hit = g.label.indexOf(q) >= 0;
        var options = g.options.filter(function (o) { return hit || o.text.indexOf(q) >= 0; });
        if (!options.length) return;
        var group = document.createElement('optgroup');
        group.label = g.label;
        options.forEach(function (o) {
          var el = document.createElement('option');
          el.value = o.value;
          el.textContent = o.text;
          group.appendChild(el);
          shown++;
        });
        select.appendChild(group);
      });
      if (!shown) first.textContent = input.getAttribute('data-none');
      select.value = current;
      if (select.value !== current) select.value = '';
    });
  }

  // The phone's location sets the community (the server finds the grid
  // polygon containing the point) and shows a place, not coordinates.
  function locate(btn, select, search) {
    var status = document.getElementById('locate-status');
    var lon = document.getElementById('lon');
    var lat = document.getElementById('lat');
    var located = null; // the community the location found
    function forget() { lon.value = ''; lat.value = ''; located = null; }
    btn.addEventListener('click', function () {
      if (!navigator.geolocation) { status.textContent = btn.getAttribute('data-fail'); return; }
      status.textContent = btn.getAttribute('data-busy');
      navigator.geolocation.getCurrentPosition(function (p) {
        var x = p.coords.longitude.toFixed(6);
        var y = p.coords.latitude.toFixed(6);
        fetch('/api/v1/portal/locate?lon=' + x + '&lat=' + y, { headers: { Accept: 'application/json' } })
          .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
          .then(function (r) {
            if (!r.ok) { forget(); status.textContent = btn.getAttribute('data-outside'); return; }
            if (search.value) { search.value = ''; search.dispatchEvent(new Event('input')); }
            lon.value = x;
            lat.value = y;
            select.value = String(r.body.community_id);
            located = select.value;
            status.textContent = btn.getAttribute('data-ok') + r.body.place;
          })
          .catch(function () { forget(); status.textContent = btn.getAttribute('data-fail'); });
      }, function () { forget(); status.textContent = btn.getAttribute('data-fail'); },
      { enableHighAccuracy: true, timeout: 10000 });
    });
    // Choosing another community by hand means the matter is elsewhere
    // (choosing the one found again changes nothing).
    select.addEventListener('change', function () {
      if (located !== null && select.value !== located) { forget(); status.textContent = ''; }
    });
  }

  // Reasons matter only for 不满意: shown when it is chosen.
  function evaluation(form) {
    var reasons = document.getElementById('eval-reasons');
    if (!reasons) return;
    function sync() {
      var picked = form.querySelector('input[name=rating]:checked');
      var show = !!picked && picked.value === 'dissatisfied';
      reasons.hidden = !show;
      if (!show) reasons.querySelectorAll('input').forEach(function (i) { i.checked = false; });
    }
    form.addEventListener('change', sync);
    sync();
  }

  // 我的反映 on the home page: each remembered code, read from the public
  // tracking API.
  function myReports(box) {
    var codes = savedCodes();
    if (!codes.length) return;
    var list = box.querySelector('ul');
    box.hidden = false;
    codes.forEach(function (code) {
      var li = document.createElement('li');
      var a = document.createElement('a');
      a.href = '/portal/track/' + encodeURIComponent(code);
      a.className = 'entry';
      var title = document.createElement('b');
      title.textContent = code;
      var state = document.createElement('span');
      state.className = 'muted small';
      state.textContent = box.getAttribute('data-loading');
      a.appendChild(title);
      a.appendChild(state);
      li.appendChild(a);
      list.appendChild(li);
      fetch('/api/v1/portal/orders/' + encodeURIComponent(code), { headers: { Accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (o) {
          if (!o) { state.textContent = box.getAttribute('data-gone'); return; }
          title.textContent = o.title;
          state.textContent = o.state_label + (o.progress ? ' · ' + o.progress : '');
          a.setAttribute('data-state', o.state);
        })
        .catch(function () { state.textContent = box.getAttribute('data-gone'); });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    var select = document.getElementById('node_id');
    var search = document.getElementById('community-search');
    if (select && search) communitySearch(search, select);
    var btn = document.getElementById('locate');
    if (btn && select && search) locate(btn, select, search);
    var rate = document.getElementById('rate-form');
    if (rate) evaluation(rate);
    var fresh = document.querySelector('[data-remember]');
    if (fresh) remember(fresh.getAttribute('data-remember'));
    var mine = document.getElementById('my-reports');
    if (mine) myReports(mine);
  });
})();
