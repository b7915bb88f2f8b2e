/* The demo shop's pages, on LedgerPay (/sdk/v1/pay.js). Each page's <main> says which it is
 * and carries the order in data attributes, so no value is written into script. */
(function () {
  'use strict';
  var main = document.querySelector('main[data-page]');
  if (!main || !window.LedgerPay) return;
  var ledger = LedgerPay({ windowUrl: document.body.dataset.windowUrl });
  var order = main.dataset;
  var statusEl = document.getElementById('status');
  var problemEl = document.getElementById('problem');

  function showProblem(err) {
    problemEl.textContent = (err.code ? err.code + ': ' : '') + err.message;
    problemEl.hidden = false;
  }

  function eventsUrl(orderId) { return '/shop/api/orders/' + encodeURIComponent(orderId) + '/events'; }

  if (order.page === 'pay') {
    var button = document.getElementById('pay');
    var paid = document.getElementById('paid');
    button.addEventListener('click', function () {
      button.disabled = true;
      ledger.requestPayment({
        orderId: order.orderId, amount: order.amount, orderName: order.orderName,
        successUrl: '/shop/success', failUrl: '/shop/fail'
      }).catch(function (err) { button.disabled = false; showProblem(err); });
    });
    // A payment made on the phone shows here as it happens.
    ledger.watch(order.orderId, {
      eventsUrl: eventsUrl(order.orderId),
      onStatus: function (status) {
        statusEl.textContent = status;
        if (status === 'SUCCESS') { paid.hidden = false; button.disabled = true; }
      }
    });
  }

  if (order.page === 'success') {
    var approvedEl = document.getElementById('approved-at');
    var confirming = false;
    // Confirm once the status stream is up, so the page shows every change the confirm makes
    // (EXECUTING, then SUCCESS); start anyway if the stream is slow to come.
    function confirmOnce() {
      if (confirming) return;
      confirming = true;
      ledger.confirm({
        confirmUrl: '/shop/api/confirm', paymentKey: order.paymentKey, orderId: order.orderId, amount: order.amount
      }).then(function (res) {
        if (res.approvedAt) approvedEl.textContent = LedgerPay.formatKST(res.approvedAt);
        if (res.failure) showProblem({ code: res.failure.code, message: res.failure.message });
      }).catch(showProblem);
    }
    ledger.watch(order.orderId, {
      eventsUrl: eventsUrl(order.orderId),
      onOpen: confirmOnce,
      onStatus: function (status, data) {
        statusEl.textContent = status;
        if (data.approvedAt) approvedEl.textContent = LedgerPay.formatKST(data.approvedAt);
        confirmOnce();
      },
      onError: confirmOnce
    });
    setTimeout(confirmOnce, 3000);
  }
})();
