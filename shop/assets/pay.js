/*
 * LedgerPay: the payment ledger's browser SDK (plain JavaScript, no build step).
 *
 * Its shape follows Toss's JS SDK where that makes sense:
 *
 *   const ledger = LedgerPay({ baseUrl, windowUrl });
 *   await ledger.requestPayment({ checkoutUrl, checkout } or { orderId, amount, orderName },
 *                               successUrl, failUrl });          // opens the payment window
 *   // on the successUrl page:
 *   const result = await ledger.confirm({ confirmUrl, paymentKey, orderId, amount });
 *   const stream = ledger.watch(orderId, { eventsUrl, onStatus, onOpen, onError });  // stream.close()
 *
 * The merchant's API key never reaches the browser: checkoutUrl, confirmUrl and eventsUrl are
 * routes of the merchant's own backend, which holds the key and calls the ledger. See README,
 * "Pay from a browser", and /sdk/v1/example.html.
 */
(function (global) {
  'use strict';

  var AMOUNT = /^[1-9][0-9]{0,14}$/;
  var ORDER_ID = /^[A-Za-z0-9_-]{6,64}$/;

  /** LedgerPayError is what every promise of the SDK rejects with. */
  function LedgerPayError(code, message, status) {
    var e = new Error(message);
    e.name = 'LedgerPayError';
    e.code = code;
    e.status = status || 0;
    return e;
  }

  function fail(code, message) { throw LedgerPayError(code, message); }

  function trimSlash(s) { return String(s).replace(/\/+$/, ''); }

  /** An absolute http(s) URL for u, resolved against the page. */
  function absolute(u, what) {
    var parsed;
    try { parsed = new URL(String(u), global.location.href); } catch (e) { fail('INVALID_URL', what + ' is not a URL'); }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail('INVALID_URL', what + ' must be http or https');
    return parsed.href;
  }

  /** amountText accepts a whole number of won as a string or an integer, and gives its digits. */
  function amountText(a) {
    var s = typeof a === 'number' && Number.isSafeInteger(a) ? String(a) : a;
    if (typeof s !== 'string' || !AMOUNT.test(s)) fail('INVALID_AMOUNT', 'amount must be a positive whole number of won');
    return s;
  }

  function checkOrderId(id) {
    if (typeof id !== 'string' || !ORDER_ID.test(id)) fail('INVALID_ORDER_ID', 'orderId must be 6 to 64 characters of A-Z, a-z, 0-9, - and _');
    return id;
  }

  /** postJSON posts body to the merchant's backend and resolves to its JSON answer. */
  async function postJSON(url, body) {
    var res;
    try {
      res = await global.fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
        body: JSON.stringify(body)
      });
    } catch (e) {
      throw LedgerPayError('NETWORK_ERROR', 'The shop could not be reached: ' + e.message);
    }
    var data = null;
    try { data = await res.json(); } catch (e) { /* not JSON: handled below */ }
    if (!res.ok) {
      var err = (data && data.error) || {};
      throw LedgerPayError(err.code || 'HTTP_' + res.status, err.message || 'The shop answered ' + res.status, res.status);
    }
    if (!data) throw LedgerPayError('INVALID_ANSWER', 'The shop did not answer JSON', res.status);
    return data;
  }

  /**
   * LedgerPay(options) makes a client.
   *   options.baseUrl   the ledger's origin; default: this page's.
   *   options.windowUrl the payment window; default: baseUrl + "/tosssim/sim/v1/window" (the
   *                     simulator paymentd serves with TOSS_SIMULATOR=true).
   */
  function LedgerPay(options) {
    options = options || {};
    var baseUrl = trimSlash(options.baseUrl || global.location.origin);
    var windowUrl = absolute(options.windowUrl || baseUrl + '/tosssim/sim/v1/window', 'windowUrl');

    /** paymentWindowUrl is the window's address for an order, as requestPayment opens it. */
    function paymentWindowUrl(req) {
      if (!req) fail('INVALID_REQUEST', 'a request is required');
      var orderName = String(req.orderName || '');
      if (orderName === '' || orderName.length > 100) fail('INVALID_ORDER_NAME', 'orderName must be 1 to 100 characters');
      var u = new URL(windowUrl);
      u.searchParams.set('orderId', checkOrderId(req.orderId));
      u.searchParams.set('amount', amountText(req.amount));
      u.searchParams.set('orderName', orderName);
      u.searchParams.set('successUrl', absolute(req.successUrl, 'successUrl'));
      u.searchParams.set('failUrl', absolute(req.failUrl, 'failUrl'));
      return u.href;
    }

    /**
     * requestPayment opens the payment window for an order by sending the browser there.
     * Give either checkoutUrl (the merchant backend's checkout route, posted `checkout` as
     * JSON, answering {orderId, amount, orderName}) or an order made already: orderId, amount,
     * orderName. successUrl and failUrl may be relative to the page. It resolves to the order
     * just before the browser leaves, and rejects with a LedgerPayError (nothing opened) when
     * the request is wrong or the checkout fails.
     */
    async function requestPayment(req) {
      if (!req) fail('INVALID_REQUEST', 'a request is required');
      var order = { orderId: req.orderId, amount: req.amount, orderName: req.orderName };
      if (req.checkoutUrl) {
        var made = await postJSON(absolute(req.checkoutUrl, 'checkoutUrl'), req.checkout || {});
        order = { orderId: made.orderId, amount: made.amount, orderName: made.orderName };
      }
      var url = paymentWindowUrl({
        orderId: order.orderId, amount: order.amount, orderName: order.orderName,
        successUrl: req.successUrl, failUrl: req.failUrl
      });
      global.location.assign(url);
      return order;
    }

    /**
     * confirm asks the merchant's backend (confirmUrl) to confirm the payment the window
     * approved, with the successUrl's paymentKey, orderId and amount. It resolves to
     * {orderId, status, approvedAt?, failure?}; status SUCCESS, FAILURE, UNKNOWN (the ledger
     * is finding out; watch the status) or EXECUTING (another confirm is running). A refusal
     * (AMOUNT_MISMATCH, an unknown order) rejects with a LedgerPayError.
     */
    async function confirm(req) {
      if (!req || !req.confirmUrl) fail('INVALID_REQUEST', 'confirmUrl is required');
      if (typeof req.paymentKey !== 'string' || req.paymentKey === '') fail('INVALID_PAYMENT_KEY', 'paymentKey is required');
      return postJSON(absolute(req.confirmUrl, 'confirmUrl'), {
        paymentKey: req.paymentKey, orderId: checkOrderId(req.orderId), amount: amountText(req.amount)
      });
    }

    /**
     * watch follows an order's status with an EventSource on eventsUrl, the merchant
     * backend's stream of "status" events ({orderId, status, event?, approvedAt?, failure?}).
     * onStatus(status, data) runs for the current status first and then for every change;
     * onOpen() when the stream (re)connects; onError(error) when it ends for good (the
     * browser reconnects by itself otherwise, resuming after the last event). It returns
     * {close()}.
     */
    function watch(orderId, opts) {
      checkOrderId(orderId);
      opts = opts || {};
      if (!opts.eventsUrl) fail('INVALID_REQUEST', 'eventsUrl is required: the merchant backend streams the status');
      if (typeof opts.onStatus !== 'function') fail('INVALID_REQUEST', 'onStatus is required');
      var es = new global.EventSource(absolute(opts.eventsUrl, 'eventsUrl'));
      es.addEventListener('status', function (e) {
        var data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        if (data && data.orderId === orderId && typeof data.status === 'string') opts.onStatus(data.status, data);
      });
      es.addEventListener('open', function () { if (opts.onOpen) opts.onOpen(); });
      es.addEventListener('error', function () {
        if (es.readyState === global.EventSource.CLOSED && opts.onError) {
          opts.onError(LedgerPayError('STREAM_CLOSED', 'The status stream ended'));
        }
      });
      return { close: function () { es.close(); } };
    }

    return { requestPayment: requestPayment, paymentWindowUrl: paymentWindowUrl, confirm: confirm, watch: watch };
  }

  /**
   * LedgerPay.redirectParams reads what the payment window put on the successUrl
   * (paymentKey, orderId, amount, paymentType) or the failUrl (code, message, orderId?).
   */
  LedgerPay.redirectParams = function (search) {
    var q = new URLSearchParams(search === undefined ? global.location.search : search);
    var out = {};
    ['paymentKey', 'orderId', 'amount', 'paymentType', 'code', 'message'].forEach(function (k) {
      if (q.has(k)) out[k] = q.get(k);
    });
    return out;
  };

  /** LedgerPay.formatWon("25000") is "25,000원"; no floating point is involved. */
  LedgerPay.formatWon = function (amount) {
    var s = String(amount);
    if (!/^[0-9]+$/.test(s)) return s + '원';
    return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + '원';
  };

  /** LedgerPay.formatKST("2026-11-21T03:00:01Z") is "2026-11-21 12:00:01 KST". */
  LedgerPay.formatKST = function (iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    var kst = new Date(d.getTime() + 9 * 60 * 60 * 1000);
    return kst.toISOString().slice(0, 19).replace('T', ' ') + ' KST';
  };

  LedgerPay.Error = LedgerPayError;
  global.LedgerPay = LedgerPay;
})(window);
