// Shows the photos chosen in a file input before the form is sent, and
// their count; the bytes stay in the browser (blob: URLs) until then.
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('input[type=file][data-preview]').forEach(function (input) {
    var box = input.closest('label').nextElementSibling;
    if (!box || !box.classList.contains('previews')) return;
    input.addEventListener('change', function () {
      box.querySelectorAll('img').forEach(function (img) { URL.revokeObjectURL(img.src); });
      box.textContent = '';
      Array.prototype.forEach.call(input.files, function (f) {
        if (f.type.indexOf('image/') === 0) {
          var img = document.createElement('img');
          img.src = URL.createObjectURL(f);
          img.alt = f.name;
          box.appendChild(img);
        } else {
          var span = document.createElement('span');
          span.className = 'pill';
          span.textContent = f.name;
          box.appendChild(span);
        }
      });
    });
  });
});
