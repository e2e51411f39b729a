// Fills the report form's coordinates from the phone's location.
document.addEventListener('DOMContentLoaded', function () {
  var btn = document.getElementById('locate');
  if (!btn) return;
  var status = document.getElementById('locate-status');
  btn.addEventListener('click', function () {
    if (!navigator.geolocation) { status.textContent = btn.getAttribute('data-fail'); return; }
    navigator.geolocation.getCurrentPosition(function (p) {
      document.getElementById('lon').value = p.coords.longitude.toFixed(6);
      document.getElementById('lat').value = p.coords.latitude.toFixed(6);
      // The place is matched to its grid on the server; numbers mean nothing to people.
      status.textContent = btn.getAttribute('data-ok');
    }, function () { status.textContent = btn.getAttribute('data-fail'); }, { enableHighAccuracy: true, timeout: 10000 });
  });
});
