/*
 * Mounts GraphiQL into #graphiql. Loaded as a plain script (no build step, no inline code) after
 * react, react-dom, graphql-ws and graphiql, which set the globals React, ReactDOM, graphqlWs
 * and GraphiQL.
 *
 * - Queries and mutations: POST JSON to data-endpoint with the session cookie and Django's CSRF
 *   token (X-CSRFToken, from the `csrftoken` cookie, else from data-csrf-token).
 * - Subscriptions: graphql-transport-ws (graphql-ws) on ws(s)://<this host><data-endpoint>.
 *   The server accepts the session cookie of a same-origin page there too; headers typed in
 *   the headers editor (e.g. {"Authorization": "Bearer …"}) are sent as connectionParams.
 * - A shared link (GET /graphql/?query=…&variables=…&operationName=…) opens with that operation:
 *   the server copies the link's parameters to data-query, data-variables and
 *   data-operation-name, and they become GraphiQL's query, variables and operation name (a new
 *   tab when the query differs from the stored ones).
 * - Sets document.body.dataset.graphiqlReady = "1" once the query editor is on the page.
 */
(function () {
  'use strict';

  var DEFAULT_QUERY = 'query Me { me { via role user { email } } }';

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split(';') : [];
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.slice(0, name.length + 1) === name + '=') {
        return decodeURIComponent(part.slice(name.length + 1));
      }
    }
    return null;
  }

  function lowerKeys(headers) {
    var seen = {};
    Object.keys(headers || {}).forEach(function (key) {
      seen[key.toLowerCase()] = true;
    });
    return seen;
  }

  function isSubscription(params, opts) {
    var doc = opts && opts.documentAST;
    if (doc && Array.isArray(doc.definitions)) {
      var ops = doc.definitions.filter(function (d) {
        return d.kind === 'OperationDefinition';
      });
      var wanted = params.operationName;
      var op = ops.find(function (d) {
        return wanted ? d.name && d.name.value === wanted : true;
      });
      if (op) return op.operation === 'subscription';
    }
    // No parsed document (should not happen in GraphiQL 3): a textual guess.
    var text = (params.query || '').replace(/#[^\n]*/g, '');
    if (params.operationName) {
      var re = new RegExp('\\b(query|mutation|subscription)\\s+' + params.operationName + '\\b');
      var m = re.exec(text);
      if (m) return m[1] === 'subscription';
    }
    return /^\s*subscription\b/.test(text);
  }

  function mount() {
    var container = document.getElementById('graphiql');
    if (!container) return;
    var endpoint = container.dataset.endpoint || '/graphql/';
    var httpUrl = new URL(endpoint, window.location.href);
    var wsUrl = new URL(httpUrl.href);
    wsUrl.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';

    function csrfToken() {
      return readCookie('csrftoken') || container.dataset.csrfToken || '';
    }

    // --- HTTP ---------------------------------------------------------------------------------
    async function httpFetch(params, opts) {
      var extra = (opts && opts.headers) || {};
      var headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
      var given = lowerKeys(extra);
      var token = csrfToken();
      if (token && !given['x-csrftoken']) headers['X-CSRFToken'] = token;
      Object.keys(extra).forEach(function (key) {
        headers[key] = String(extra[key]);
      });
      var response = await fetch(httpUrl.href, {
        method: 'POST',
        credentials: 'same-origin',
        headers: headers,
        body: JSON.stringify(params),
      });
      var text = await response.text();
      try {
        return JSON.parse(text);
      } catch (err) {
        return {
          errors: [
            {
              message: 'HTTP ' + response.status + ' ' + response.statusText + ': ' + text.slice(0, 500),
            },
          ],
        };
      }
    }

    // --- WebSocket (graphql-transport-ws) -------------------------------------------------------
    var wsClient = null;
    var wsParamsKey = null;

    function clientFor(connectionParams) {
      var key = JSON.stringify(connectionParams);
      if (wsClient && key === wsParamsKey) return wsClient;
      if (wsClient) wsClient.dispose();
      wsParamsKey = key;
      wsClient = window.graphqlWs.createClient({
        url: wsUrl.href,
        connectionParams: connectionParams,
        lazy: true,
        retryAttempts: 0,
      });
      return wsClient;
    }

    function wsSubscribe(params, opts) {
      var connectionParams = Object.assign({}, (opts && opts.headers) || {});
      var client = clientFor(connectionParams);
      // An Observable: GraphiQL calls subscribe() and keeps the returned unsubscribe.
      return {
        subscribe: function (observer) {
          var sink = typeof observer === 'function' ? { next: observer } : observer;
          var dispose = client.subscribe(
            {
              query: params.query,
              variables: params.variables || undefined,
              operationName: params.operationName || undefined,
            },
            {
              next: function (value) {
                if (sink.next) sink.next(value);
              },
              error: function (err) {
                if (!sink.error) return;
                if (err instanceof Error) sink.error(err);
                else if (err && typeof err.code === 'number') {
                  // A CloseEvent: the server refused or dropped the connection.
                  sink.error(new Error('WebSocket closed: ' + err.code + ' ' + (err.reason || '')));
                } else if (Array.isArray(err)) sink.error({ errors: err });
                else sink.error(new Error(String(err)));
              },
              complete: function () {
                if (sink.complete) sink.complete();
              },
            }
          );
          return { unsubscribe: dispose };
        },
      };
    }

    function fetcher(params, opts) {
      if (isSubscription(params, opts)) return wsSubscribe(params, opts);
      return httpFetch(params, opts);
    }

    function Ready() {
      React.useEffect(function () {
        var started = Date.now();
        function check() {
          var editor = document.querySelector('.graphiql-query-editor .CodeMirror');
          if (editor || Date.now() - started > 15000) {
            document.body.dataset.graphiqlReady = '1';
          } else {
            window.setTimeout(check, 50);
          }
        }
        check();
      }, []);
      return null;
    }

    var props = {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
    };
    var link = container.dataset;
    if (link.query !== undefined) props.query = link.query;
    if (link.variables !== undefined) {
      props.variables = link.variables;
      props.defaultEditorToolsVisibility = 'variables';
    }
    // The operation the link names runs, not the one under the cursor.
    if (link.operationName !== undefined) props.operationName = link.operationName;

    var app = React.createElement(
      React.Fragment,
      null,
      React.createElement(GraphiQL, props),
      React.createElement(Ready)
    );

    container.textContent = '';
    var root = ReactDOM.createRoot(container);
    root.render(app);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', mount);
  } else {
    mount();
  }
})();
