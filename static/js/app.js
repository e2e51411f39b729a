// Small behaviours shared by console pages. Kept in a file so the CSP can
// forbid inline scripts.
document.addEventListener('DOMContentLoaded', function () {
  var current = document.querySelector('.tree li.current');
  if (current && current.scrollIntoView) current.scrollIntoView({ block: 'center' });
});
