/*
 * The live dashboard (templates/dashboard.html). A plain script, no build step, loaded after
 * graphql-ws (the global graphqlWs).
 *
 * - First paint: one `analyticsOverview` query and one `realTimeMetrics` query over HTTP (the
 *   session cookie, Django's CSRF token).
 * - Then `liveMetrics` and `orderEvents` over graphql-transport-ws on the same host (the server
 *   accepts the session cookie of a same-origin page), reconnecting with backoff whenever the
 *   socket drops; graphql-ws subscribes again after each reconnect.
 * - Sets document.body.dataset.dashboardReady = "1" after the first paint and
 *   #live-status[data-state] to connecting | live | reconnecting.
 */
(function () {
  'use strict';

  var root = document.getElementById('dashboard');
  var endpoint = new URL(root.dataset.endpoint || '/graphql/', window.location.href);
  var currency = root.dataset.currency || 'USD';
  var latestVersion = -1;
  var MAX_ORDERS = 10;

  var OVERVIEW = 'query Overview { analyticsOverview { from to ' +
    'kpis { metric label kind value previous change } ' +
    'sales { labels datasets { metric label data } } ' +
    'latestOrders(first: 10) { id number placedAt status total { amount currency } } } ' +
    'realTimeMetrics { ...Live } } ' + LIVE_FIELDS();
  var LIVE = 'subscription Live { liveMetrics { ...Live } } ' + LIVE_FIELDS();
  var ORDERS = 'subscription Orders { orderEvents { event status ' +
    'order { id number placedAt status total { amount currency } } } }';

  function LIVE_FIELDS() {
    return 'fragment Live on LiveMetrics { day revenue { amount currency } orders ' +
      'averageOrderValue { amount currency } visitors conversion version }';
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split(';') : [];
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.slice(0, name.length + 1) === name + '=') return decodeURIComponent(part.slice(name.length + 1));
    }
    return null;
  }

  function gql(query, variables) {
    return fetch(endpoint.href, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/json', Accept: 'application/json',
        'X-CSRFToken': readCookie('csrftoken') || root.dataset.csrfToken || ''
      },
      body: JSON.stringify({ query: query, variables: variables || {} })
    }).then(function (response) { return response.json(); }).then(function (body) {
      if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
      return body.data;
    });
  }

  // --- formatting -------------------------------------------------------------------------------
  var moneyFormat = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency });
  function money(value) { return value == null ? '—' : moneyFormat.format(Number(value.amount != null ? value.amount : value)); }
  function percent(value) { return value == null ? '—' : (Number(value) * 100).toFixed(1) + '%'; }
  function count(value) { return value == null ? '—' : Number(value).toLocaleString(); }
  function figure(kind, value) { return kind === 'MONEY' ? money(value) : kind === 'RATIO' ? percent(value) : count(value); }
  function text(id, value) {
    var node = document.getElementById(id);
    if (node.textContent !== value) {
      node.textContent = value;
      node.classList.remove('flash');
      void node.offsetWidth;  // restart the highlight
      node.classList.add('flash');
    }
  }
  function element(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content != null) node.textContent = content;
    return node;
  }

  // --- today (live) -----------------------------------------------------------------------------
  function showLive(metrics) {
    if (!metrics || metrics.version < latestVersion) return;  // never an older snapshot after a newer one
    latestVersion = metrics.version;
    document.getElementById('today-day').textContent = metrics.day;
    text('live-revenue', money(metrics.revenue));
    text('live-orders', count(metrics.orders));
    text('live-aov', money(metrics.averageOrderValue));
    text('live-visitors', count(metrics.visitors));
    text('live-conversion', percent(metrics.conversion));
  }

  // --- the range: KPI cards, chart, latest orders ----------------------------------------------
  function showKpis(kpis) {
    var box = document.getElementById('kpis');
    box.textContent = '';
    kpis.forEach(function (kpi) {
      var card = element('article', 'card');
      card.dataset.metric = kpi.metric;
      card.appendChild(element('h3', null, kpi.label));
      card.appendChild(element('p', 'figure', figure(kpi.kind, kpi.value)));
      if (kpi.change != null) {
        var change = Number(kpi.change);
        card.appendChild(element('p', 'delta ' + (change >= 0 ? 'up' : 'down'),
          (change >= 0 ? '▲ ' : '▼ ') + percent(Math.abs(change)) + ' vs previous'));
      }
      box.appendChild(card);
    });
  }

  function showChart(series) {
    var data = (series.datasets.find(function (d) { return d.metric === 'NET_SALES'; }) || series.datasets[0]).data;
    var values = data.map(function (v) { return Number(v || 0); });
    var width = 800, height = 220, pad = 28, top = Math.max.apply(null, values.concat([1]));
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('preserveAspectRatio', 'none');
    var step = (width - pad) / Math.max(values.length, 1);
    values.forEach(function (value, index) {
      var bar = document.createElementNS(ns, 'rect');
      var barHeight = (height - pad) * value / top;
      bar.setAttribute('class', 'bar');
      bar.setAttribute('x', String(pad + index * step + step * 0.15));
      bar.setAttribute('y', String(height - pad - barHeight));
      bar.setAttribute('width', String(step * 0.7));
      bar.setAttribute('height', String(barHeight));
      var title = document.createElementNS(ns, 'title');
      title.textContent = series.labels[index] + ': ' + money(value);
      bar.appendChild(title);
      svg.appendChild(bar);
    });
    var axis = document.createElementNS(ns, 'line');
    axis.setAttribute('class', 'axis');
    axis.setAttribute('x1', String(pad)); axis.setAttribute('x2', String(width));
    axis.setAttribute('y1', String(height - pad)); axis.setAttribute('y2', String(height - pad));
    svg.appendChild(axis);
    [[0, series.labels[0]], [values.length - 1, series.labels[series.labels.length - 1]]].forEach(function (pair) {
      var label = document.createElementNS(ns, 'text');
      label.setAttribute('x', String(pad + pair[0] * step));
      label.setAttribute('y', String(height - 8));
      label.textContent = pair[1] || '';
      svg.appendChild(label);
    });
    var max = document.createElementNS(ns, 'text');
    max.setAttribute('x', '0'); max.setAttribute('y', '12');
    max.textContent = money(top);
    svg.appendChild(max);
    var box = document.getElementById('sales-chart');
    box.textContent = '';
    box.appendChild(svg);
  }

  function orderRow(order) {
    var row = element('tr');
    row.dataset.order = order.id;
    row.appendChild(element('td', null, '#' + order.number));
    row.appendChild(element('td', null, new Date(order.placedAt).toLocaleString()));
    row.appendChild(element('td', 'status', order.status.toLowerCase().replace(/_/g, ' ')));
    row.appendChild(element('td', 'num', money(order.total)));
    return row;
  }

  function showOrders(orders) {
    var body = document.querySelector('#latest-orders tbody');
    body.textContent = '';
    orders.forEach(function (order) { body.appendChild(orderRow(order)); });
  }

  function onOrderEvent(message) {
    var order = message.order;
    if (!order) return;
    var body = document.querySelector('#latest-orders tbody');
    var existing = body.querySelector('tr[data-order="' + order.id + '"]');
    if (existing) {
      body.replaceChild(orderRow(order), existing);
    } else if (message.event === 'CREATED' || message.event === 'created') {
      body.insertBefore(orderRow(order), body.firstChild);
      while (body.children.length > MAX_ORDERS) body.removeChild(body.lastChild);
    }
  }

  // --- the socket ---------------------------------------------------------------------------------
  function setStatus(state, label) {
    var node = document.getElementById('live-status');
    node.dataset.state = state;
    node.textContent = label;
  }

  function connect() {
    var wsUrl = new URL(endpoint.href);
    wsUrl.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
    var client = graphqlWs.createClient({
      url: wsUrl.href,
      lazy: false,
      keepAlive: 10000,
      retryAttempts: Infinity,
      shouldRetry: function () { return true; },
      retryWait: function (retries) {  // 0.5 s, 1 s, 2 s … up to 15 s, with jitter
        var wait = Math.min(15000, 500 * Math.pow(2, retries)) + Math.random() * 300;
        return new Promise(function (resolve) { setTimeout(resolve, wait); });
      },
      on: {
        connected: function () { setStatus('live', 'live'); },
        closed: function () { setStatus('reconnecting', 'reconnecting…'); }
      }
    });
    function subscribe(query, handle) {
      client.subscribe({ query: query }, {
        next: function (result) { if (result.data) handle(result.data); },
        error: function (error) { console.warn('subscription ended', error); },
        complete: function () {}
      });
    }
    subscribe(LIVE, function (data) { showLive(data.liveMetrics); });
    subscribe(ORDERS, function (data) { onOrderEvent(data.orderEvents); });
    window.dashboardSocket = client;  // for tests and the console: dashboardSocket.terminate()
  }

  gql(OVERVIEW).then(function (data) {
    var overview = data.analyticsOverview;
    document.getElementById('range-days').textContent = overview.from + ' – ' + overview.to;
    showKpis(overview.kpis);
    showChart(overview.sales);
    showOrders(overview.latestOrders);
    showLive(data.realTimeMetrics);
    document.body.dataset.dashboardReady = '1';
  }).catch(function (error) {
    document.getElementById('kpis').textContent = 'Could not load the overview: ' + error.message;
  });
  connect();
}());
