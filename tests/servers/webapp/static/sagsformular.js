// The case form of Sagsportalen, written the way vendor pages are: the form arrives from a
// <template> after load, the "Ydelse" select is replaced by one with options a little later (as
// if they came from a slow service), a confirm() dialog gates the submit, and the remark typed
// in the iframe editor is copied into a hidden field only then. A robot must wait for elements,
// find them again after they are replaced, answer the dialog and write inside the frame.
'use strict';

(function() {
  const holder = document.getElementById('formular-pladsholder');
  const template = document.getElementById('sagsformular');
  if (!holder || !template) return;
  const formDelay = Number(holder.dataset.formularEfterMs || 100);
  const selectDelay = Number(holder.dataset.ydelserEfterMs || 300);
  const benefits = JSON.parse(document.getElementById('ydelser').textContent);

  function insertForm() {
    const form = document.importNode(template.content, true).querySelector('form');
    const frame = form.querySelector('iframe');
    const remark = form.querySelector('input[name="bemaerkning"]');
    // After a validation error the server sends the remark back: show it in the editor again.
    frame.addEventListener('load', function() {
      const body = frame.contentDocument.body;
      if (remark.value !== '' || body.textContent.trim() === '') body.textContent = remark.value;
    });
    form.addEventListener('submit', function(event) {
      if (!window.confirm('Vil du oprette sagen?')) {
        event.preventDefault();
        return;
      }
      const body = frame.contentDocument && frame.contentDocument.body;
      remark.value = body ? body.innerText.replace(/\n+$/, '') : '';
      form.querySelector('button[type="submit"]').disabled = true;
    });
    holder.replaceChildren(form);
    setTimeout(loadBenefits, Math.max(0, selectDelay - formDelay));
  }

  // A new element, not new options in the old one: a reference to the old select goes stale.
  function loadBenefits() {
    const old = document.getElementById('ydelse');
    if (!old) return;
    const select = document.createElement('select');
    select.id = old.id;
    select.name = old.name;
    if (old.hasAttribute('aria-invalid')) select.setAttribute('aria-invalid', 'true');
    select.add(new Option('Vælg ydelse', ''));
    for (const b of benefits) select.add(new Option(b.navn, b.kode));
    select.value = old.dataset.valgt || '';
    old.replaceWith(select);
  }

  setTimeout(insertForm, formDelay);
})();
