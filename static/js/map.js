// Draws grid polygons with Leaflet on a plain background: a graticule, a
// scale bar and the cursor's coordinates stand in for base tiles, so maps
// work with no tile server. A tile URL template can be configured.
(function () {
  'use strict';

  function colour(v, max, min) {
    // Light to dark green across the range of values shown.
    min = min || 0;
    var f = max > min ? Math.max(0, Math.min(1, (v - min) / (max - min))) : 0;
    var stops = ['#e8f5e9', '#c8e6c9', '#a5d6a7', '#81c784', '#4caf50', '#2e7d32', '#1b5e20'];
    return stops[Math.min(stops.length - 1, Math.floor(f * (stops.length - 1) + 0.5))];
  }

  // The words shown come from the catalogue, carried by the map element.
  var MSG = {};
  function msg(key, value) {
    var text = MSG[key] || '';
    return value == null ? text : text.replace('{}', value);
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function graticule(map) {
    var layer = L.layerGroup().addTo(map);
    function draw() {
      layer.clearLayers();
      var b = map.getBounds();
      var span = Math.max(b.getEast() - b.getWest(), b.getNorth() - b.getSouth());
      var step = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1].find(function (s) { return span / s < 12; }) || 1;
      var style = { color: '#90a4ae', weight: 0.6, opacity: 0.6, dashArray: '3 4', interactive: false };
      for (var x = Math.floor(b.getWest() / step) * step; x <= b.getEast(); x += step) {
        L.polyline([[b.getSouth(), x], [b.getNorth(), x]], style).addTo(layer);
      }
      for (var y = Math.floor(b.getSouth() / step) * step; y <= b.getNorth(); y += step) {
        L.polyline([[y, b.getWest()], [y, b.getEast()]], style).addTo(layer);
      }
    }
    map.on('moveend zoomend', draw);
    draw();
  }

  function legend(map, max, min) {
    var ctl = L.control({ position: 'topright' });
    ctl.onAdd = function () {
      var div = L.DomUtil.create('div', 'fq-legend');
      var html = '<b>' + escapeHtml(msg('households')) + '</b>';
      [0, 0.33, 0.66, 1].forEach(function (f) {
        var v = Math.round(min + (max - min) * f);
        html += '<div><i style="background:' + colour(v, max, min) + '"></i>' + v + '</div>';
      });
      div.innerHTML = html;
      return div;
    };
    ctl.addTo(map);
  }

  // Subdistrict boundaries drawn over the grid choropleth, with labels.
  function outlines(map, node) {
    fetch('/api/v1/nodes/' + node + '/geojson?kinds=subdistrict', { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : { features: [] }; })
      .then(function (fc) {
        L.geoJSON(fc, {
          interactive: false,
          style: function () { return { color: '#1f4e8c', weight: 2.5, fill: false }; },
          onEachFeature: function (f, l) {
            l.bindTooltip(f.properties.name, { permanent: true, direction: 'center', className: 'fq-label' });
          }
        }).addTo(map);
      });
  }

  // Open orders over the grids (一张图): one dot each, coloured by the
  // deadline light, in a pane above the polygons; a popup links the order.
  var LIGHTS = {
    red: { fill: '#d32f2f' },
    yellow: { fill: '#f9a825' },
    normal: { fill: '#1565c0' }
  };

  function orders(map, el) {
    map.createPane('events');
    map.getPane('events').style.zIndex = 450;
    fetch('/api/v1/orders/map?queue=' + encodeURIComponent(el.getAttribute('data-orders')), { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (fc) {
        var counts = { red: 0, yellow: 0, normal: 0 };
        // Overdue dots last, so they are drawn on top.
        var rank = { normal: 0, yellow: 1, red: 2 };
        fc.features.sort(function (a, b) { return (rank[a.properties.warning] || 0) - (rank[b.properties.warning] || 0); });
        var layer = L.geoJSON(fc, {
          pane: 'events',
          pointToLayer: function (f, latlng) {
            var w = LIGHTS[f.properties.warning] ? f.properties.warning : 'normal';
            counts[w] += 1;
            return L.circleMarker(latlng, {
              pane: 'events', radius: w === 'normal' ? 5 : 6.5, color: '#fff', weight: 1.5,
              fillColor: LIGHTS[w].fill, fillOpacity: 0.95
            });
          },
          onEachFeature: function (f, l) {
            var p = f.properties;
            l.bindTooltip(escapeHtml(p.title));
            l.bindPopup('<b>' + escapeHtml(p.title) + '</b><br>' + escapeHtml(p.category_name) + ' · ' +
              escapeHtml(p.state_label) + '<br>' + escapeHtml(p.node_name) + ' · ' + escapeHtml(p.tracking_code) +
              '<br><a href="/orders/' + p.id + '">' + escapeHtml(msg('open_order')) + '</a>');
          }
        }).addTo(map);
        var ctl = L.control({ position: 'bottomleft' });
        ctl.onAdd = function () {
          var div = L.DomUtil.create('div', 'fq-legend fq-events');
          var html = '<label><input type="checkbox" checked> <b>' + escapeHtml(msg('orders_count', fc.features.length)) + '</b></label>';
          ['red', 'yellow', 'normal'].forEach(function (w) {
            html += '<div><i class="dot" style="background:' + LIGHTS[w].fill + '"></i>' + escapeHtml(msg(w)) + ' ' + counts[w] + '</div>';
          });
          if (fc.truncated) html += '<div class="muted">' + escapeHtml(msg('orders_truncated', fc.features.length)) + '</div>';
          div.innerHTML = html;
          L.DomEvent.disableClickPropagation(div);
          div.querySelector('input').addEventListener('change', function (e) {
            if (e.target.checked) layer.addTo(map); else map.removeLayer(layer);
          });
          return div;
        };
        ctl.addTo(map);
        el.setAttribute('data-orders-loaded', fc.features.length);
      })
      .catch(function (e) {
        console.error('orders on map', e && e.stack || e);
        el.setAttribute('data-orders-error', '1');
      });
  }

  // Drawing and editing a grid's boundary (leaflet-geoman), saved through
  // the tree API, which validates it (closed rings, no overlap with the
  // other grids of the community); a refusal is shown on the map and
  // under it.
  function editor(map, el, layer, fc) {
    var node = el.getAttribute('data-edit');
    var save = document.getElementById('polygon-save');
    var result = document.getElementById('polygon-result');
    var shape = null;
    layer.eachLayer(function (l) { if (l.feature && l.feature.properties.self && l.getLatLngs) shape = l; });
    var box = L.control({ position: 'topright' });
    box.onAdd = function () {
      var div = L.DomUtil.create('div', 'fq-map-note');
      div.hidden = true;
      return div;
    };
    box.addTo(map);
    function note(text, bad) {
      var div = box.getContainer();
      div.textContent = text;
      div.hidden = !text;
      div.classList.toggle('bad', !!bad);
      result.innerHTML = '';
      if (text) {
        var p = document.createElement('p');
        p.className = bad ? 'alert' : 'notice';
        p.setAttribute('role', bad ? 'alert' : 'status');
        p.textContent = text;
        result.appendChild(p);
      }
    }
    function editable(l) {
      l.options.pmIgnore = false;
      L.PM.reInitLayer(l);
      l.on('pm:edit pm:markerdragend pm:vertexremoved', changed);
    }
    function changed() {
      save.disabled = false;
      if (shape) shape.setStyle({ color: '#c62828', dashArray: null });
      note(msg('polygon_changed'), false);
    }
    map.pm.setLang('zh');
    map.pm.addControls({
      position: 'topleft', drawMarker: false, drawCircleMarker: false, drawPolyline: false, drawCircle: false,
      drawText: false, cutPolygon: false, rotateMode: false, dragMode: false, removalMode: false
    });
    if (shape) editable(shape);
    else note(msg('polygon_none'), false);
    map.on('pm:create', function (e) {
      // One boundary per grid: a new drawing replaces the old one.
      if (shape) {
        layer.removeLayer(shape);
        map.removeLayer(shape);
      }
      shape = e.layer;
      editable(shape);
      changed();
    });
    save.addEventListener('click', function () {
      if (!shape) return;
      var geometry = shape.toGeoJSON().geometry;
      var headers = { 'content-type': 'application/json' };
      try { Object.assign(headers, JSON.parse(document.body.getAttribute('hx-headers') || '{}')); } catch (e) { /* no token: the server refuses */ }
      save.disabled = true;
      fetch('/api/v1/nodes/' + node, {
        method: 'PATCH', credentials: 'same-origin', headers: headers,
        body: JSON.stringify({ version: +el.getAttribute('data-version'), polygon: geometry })
      })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (r) {
          if (r.ok) {
            el.setAttribute('data-version', r.body.version);
            shape.setStyle({ color: '#c62828', dashArray: null });
            note(msg('polygon_saved'), false);
            el.setAttribute('data-saved', r.body.version);
          } else {
            var text = (r.body && r.body.error && r.body.error.message) || '';
            shape.setStyle({ color: '#b71c1c', dashArray: '6 4' });
            note(msg('polygon_save_failed', text), true);
            save.disabled = false;
          }
        })
        .catch(function (e) {
          console.error('polygon save', e && e.stack || e);
          note(msg('load_failed'), true);
          save.disabled = false;
        });
    });
  }

  function init(el) {
    try { MSG = JSON.parse(el.getAttribute('data-msgs') || '{}'); } catch (e) { MSG = {}; }
    var node = el.getAttribute('data-node');
    var mode = el.getAttribute('data-mode') || 'node';
    var src = el.getAttribute('data-public')
      ? '/portal/area/' + node + '/geojson'
      : (mode === 'grids' ? '/api/v1/nodes/' + node + '/geojson?kinds=grid' : '/api/v1/nodes/' + node + '/geojson');
    // Only the boundary being edited is handed to the drawing tools.
    if (el.getAttribute('data-edit') && L.PM) L.PM.setOptIn(true);
    // With the tools opted in, the map itself must ask for them too.
    var map = L.map(el, { zoomSnap: 0.25, attributionControl: false, pmIgnore: false });
    var tiles = el.getAttribute('data-tiles');
    if (tiles) L.tileLayer(tiles, { subdomains: '01234567', maxZoom: 18 }).addTo(map);
    else el.classList.add('plain-bg');
    L.control.scale({ metric: true, imperial: false }).addTo(map);
    fetch(src, { credentials: 'same-origin' })
      .then(function (r) {
        // An area outside the viewer's scope: show just the point, if any.
        if (r.status === 404) return { type: 'FeatureCollection', features: [] };
        if (!r.ok) throw new Error(r.status);
        return r.json();
      })
      .then(function (fc) {
        var max = 0, min = Infinity;
        fc.features.forEach(function (f) {
          if (f.properties.self || f.geometry.type === 'Point') return;
          max = Math.max(max, f.properties.households || 0);
          min = Math.min(min, f.properties.households || 0);
        });
        if (!isFinite(min)) min = 0;
        var layer = L.geoJSON(fc, {
          style: function (f) {
            if (f.properties.self) return { color: '#c62828', weight: 3, fill: fc.features.length === 1, fillOpacity: 0.15 };
            if (f.geometry.type === 'Point') return { color: '#0d47a1', weight: 1, fillColor: '#1e88e5', fillOpacity: 0.85 };
            return { color: '#37474f', weight: 1, fillColor: colour(f.properties.households || 0, max, min), fillOpacity: 0.7 };
          },
          pointToLayer: function (f, latlng) {
            return L.circleMarker(latlng, { radius: 4, color: '#1565c0', weight: 1, fillOpacity: 0.8 });
          },
          onEachFeature: function (f, l) {
            var p = f.properties;
            var html = '<b>' + escapeHtml(p.name) + '</b><br>' + escapeHtml(p.code);
            if (p.households != null) html += '<br>' + escapeHtml(msg('households_value', p.households));
            if (!el.getAttribute('data-public') && !p.self) html += '<br><a href="/tree/' + p.id + '">' + escapeHtml(msg('details')) + '</a>';
            l.bindPopup(html);
            l.bindTooltip(p.name, { sticky: true });
          }
        });
        var pt = (el.getAttribute('data-point') || '').split(',');
        // The view first: vector layers added to a map without one fail to clip.
        var bounds = layer.getBounds();
        var editing = el.getAttribute('data-edit') && window.L && L.PM;
        // A single point (a building) has bounds of no size, which
        // fitBounds turns into NaN: centre on it instead.
        if (bounds.isValid() && bounds.getNorthEast().equals(bounds.getSouthWest())) map.setView(bounds.getCenter(), 17);
        else if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12] });
        else if (pt.length === 2 && pt[0] && pt[1]) map.setView([+pt[1], +pt[0]], 16);
        else if (editing && el.getAttribute('data-around')) {
          // A grid with no boundary yet: start from its community's area.
          var around = el.getAttribute('data-around').split(',');
          map.setView([+around[1], +around[0]], 15);
        } else {
          var card = el.closest('.mcard, .card');
          (card || el).hidden = true;
          return;
        }
        layer.addTo(map);
        if (pt.length === 2 && pt[0] && pt[1]) {
          L.circleMarker([+pt[1], +pt[0]], { radius: 8, color: '#b71c1c', weight: 2, fillColor: '#e53935', fillOpacity: 0.9 })
            .addTo(map).bindTooltip(msg('incident_place'));
        }
        if (max > 0) legend(map, max, min);
        if (mode === 'grids') outlines(map, node);
        if (el.getAttribute('data-orders')) orders(map, el);
        graticule(map);
        if (editing) editor(map, el, layer, fc);
        el.setAttribute('data-loaded', fc.features.length);
      })
      .catch(function (e) {
        console.error('map', e && e.stack || e);
        el.setAttribute('data-error', '1');
        el.textContent = msg('load_failed');
      });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('.fq-map').forEach(init);
  });
})();
