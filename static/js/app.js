// Small behaviours shared by console pages. Kept in a file so the CSP can
// forbid inline scripts.
document.addEventListener('DOMContentLoaded', function () {
  // Keep the current node visible inside the tree panel (not the page).
  var panel = document.querySelector('.treepanel');
  var current = document.querySelector('.tree li.current');
  if (panel && current) panel.scrollTop = current.offsetTop - panel.clientHeight / 2;
});
