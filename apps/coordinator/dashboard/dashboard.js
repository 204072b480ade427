// The coordinator's dashboard: reads the JSON read routes and follows GET /api/events (server-sent
// events, read through fetch so that the bearer token can be sent: EventSource cannot send
// headers). The token, when the coordinator needs one (not on loopback), comes from the URL
// fragment (#token=..., never sent to the server nor logged) or the form, and is kept in
// sessionStorage. Refetches after events are coalesced: at most one per 1.5 s; without events,
// one every 5 s. The round history and the checkpoints are asked for with the ETag last received:
// the coordinator answers 304 while they have not changed, and the page then does not redraw them.
/* global FedclrCharts */
(function () {
  'use strict';
  var esc = FedclrCharts.esc;
  var fmt = FedclrCharts.fmt;
  var $ = function (id) { return document.getElementById(id); };
  var state = { status: null, run: null, agents: null, rounds: null, checkpoints: null, log: [], seen: {} };
  var stats = { loads: 0, events: 0, lastRenderMs: 0 };
  window.fedclrDashboard = stats;

  var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('fedclr-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname);
  }
  var token = function () { return sessionStorage.getItem('fedclr-token'); };
  var headers = function () { var t = token(); return t ? { authorization: 'Bearer ' + t } : {}; };

  function askToken() {
    $('auth').hidden = false;
  }
  $('auth').addEventListener('submit', function (e) {
    e.preventDefault();
    sessionStorage.setItem('fedclr-token', $('token').value.trim());
    $('auth').hidden = true;
    refresh(true);
    connect();
  });

  function api(path) {
    return fetch(path, { headers: headers(), cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { askToken(); throw new Error('unauthorized'); }
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  // The history routes (rounds, checkpoints) answer 304 while the history has not moved: the
  // page then keeps what it has and does not redraw it.
  var etags = {}, bodies = {};
  function apiIfChanged(path) {
    var h = headers();
    if (etags[path]) h['if-none-match'] = etags[path];
    return fetch(path, { headers: h, cache: 'no-store' }).then(function (r) {
      if (r.status === 304 && path in bodies) return { changed: false, body: bodies[path] };
      if (r.status === 401) { askToken(); throw new Error('unauthorized'); }
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      var tag = r.headers.get('etag');
      return r.json().then(function (body) {
        if (tag) { etags[path] = tag; bodies[path] = body; }
        return { changed: true, body: body };
      });
    });
  }

  // ---- rendering ---------------------------------------------------------------------------
  function ago(ms) {
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago';
  }
  function time(ms) { return new Date(ms).toLocaleTimeString(); }
  function n(v, digits) { return typeof v === 'number' && isFinite(v) ? (digits === undefined ? fmt(v) : v.toFixed(digits)) : '–'; }

  function renderSummary() {
    var r = state.run, s = state.status;
    if (!r || !s) return;
    var rows = [
      ['model', r.model.architecture + ' (' + r.model.parameters.toLocaleString() + ' parameters)'],
      ['recipe', Object.keys(r.recipe).map(function (k) { return k + ' ' + r.recipe[k]; }).join(', ')],
      ['strategy', r.strategy.name + ' ' + Object.keys(r.strategy.params).map(function (k) { return k + '=' + r.strategy.params[k]; }).join(' ')],
      ['aggregation', r.aggregation + (s.secagg ? ' (SecAgg+, dropout ' + s.secagg.dropoutFraction + ', corrupt ' + s.secagg.corruptFraction + ')' : '')],
      ['sampling', r.sampling + ', cohort ' + r.cohort.min + '–' + r.cohort.max],
      ['rounds', s.completedRounds + ' of ' + s.targetRounds + (s.finishedBy ? ' (finished by ' + s.finishedBy + ')' : '')],
      ['model version', s.model.modelVersion.slice(0, 16) + '… (round ' + s.model.roundId + ')'],
    ];
    if (r.dp) rows.push(['differential privacy', 'sigma ' + r.dp.noiseMultiplier + ', clip ' + r.dp.clipNorm + ', noise by ' + r.dp.noise + ', delta ' + r.dp.delta + (r.dp.targetEpsilon === null ? '' : ', budget epsilon ' + r.dp.targetEpsilon)]);
    $('summary-list').innerHTML = rows.map(function (x) { return '<dt>' + esc(x[0]) + '</dt><dd>' + esc(x[1]) + '</dd>'; }).join('');
    $('threat-model').innerHTML = r.threatModel.map(function (l) { return '<li>' + esc(l) + '</li>'; }).join('');
  }

  function renderStage() {
    var s = state.status;
    if (!s) return;
    var html = '<p>phase <strong id="phase">' + esc(s.phase) + '</strong>';
    if (s.round) {
      var r = s.round;
      html += ' · round <strong id="stage-round">' + r.roundId + '</strong> · answered ' + r.answered + ' of ' + r.cohortSize + ' · accepted ' + r.accepted + ' (quorum ' + r.required + ') · deadline in ' + Math.max(0, Math.round((r.deadlineAt - Date.now()) / 1000)) + ' s</p>';
      var frac = r.cohortSize > 0 ? r.answered / r.cohortSize : 0;
      html += '<div class="bar-outer" title="answered"><div class="bar-inner" style="width:' + (100 * frac).toFixed(1) + '%"></div></div>';
    } else html += '</p>';
    if (s.privacy) html += '<p>epsilon spent <strong id="epsilon">' + n(s.privacy.epsilon) + '</strong> at delta ' + s.privacy.delta + (s.privacy.targetEpsilon === null ? '' : ' of a budget of ' + s.privacy.targetEpsilon) + ' after ' + s.privacy.rounds + ' rounds (sampling rate ' + n(s.privacy.samplingRate) + ')</p>';
    html += '<p class="muted">agents connected ' + s.agents.connected + ', ready ' + s.agents.ready + ', active ' + s.agents.active + '</p>';
    $('stage-body').innerHTML = html;
  }

  function renderAgents() {
    var a = state.agents;
    if (!a) return;
    var rows = {};
    a.items.forEach(function (x) { rows[x.agentId] = { id: x.agentId, online: true, state: x.state || 'idle', progress: x.progress, lastSeen: x.lastSeen, round: '–' }; });
    var cohortSize = 0, dropped = 0;
    if (a.cohort) {
      cohortSize = a.cohort.members.length;
      a.cohort.members.forEach(function (c) {
        var row = rows[c.agentId] || (rows[c.agentId] = { id: c.agentId, online: false, state: '–', lastSeen: null });
        row.round = c.status;
        if (c.status === 'dropped' || c.status === 'timeout' || c.status === 'failed') dropped++;
      });
    }
    var ids = Object.keys(rows).sort();
    $('agents-counts').textContent = a.items.length + ' online · ' + cohortSize + ' in the cohort of round ' + (a.cohort ? a.cohort.roundId : '–') + ' · ' + dropped + ' dropped';
    $('agents-rows').innerHTML = ids.map(function (id) {
      var r = rows[id];
      var st = r.state + (typeof r.progress === 'number' && r.state === 'training' ? ' ' + Math.round(r.progress * 100) + '%' : '');
      return '<tr data-agent="' + esc(id) + '"><td>' + esc(id) + '</td><td>' + (r.online ? 'yes' : 'no') + '</td><td>' + esc(r.round) + '</td><td>' + esc(st) + '</td><td>' + (r.lastSeen === null ? '–' : ago(r.lastSeen)) + '</td></tr>';
    }).join('');
  }

  function renderRounds() {
    var page = state.rounds;
    if (!page) return;
    var ck = {};
    (state.checkpoints ? state.checkpoints.items : []).forEach(function (c) { if (c.tfjs) ck[c.roundId] = true; });
    $('rounds-count').textContent = page.total + ' rounds' + (page.total > page.items.length ? ' (the newest ' + page.items.length + ' shown)' : '');
    $('rounds-rows').innerHTML = page.items.map(function (r) {
      var link = ck[r.roundId] ? '<a href="/api/checkpoints/' + r.roundId + '/tfjs/model.json">model.json</a>' : '';
      return '<tr data-round="' + r.roundId + '"><td>' + r.roundId + '</td><td>' + esc(r.status) + '</td><td>' + time(r.startedAt) + '</td><td>' + (r.durationMs === null ? '–' : (r.durationMs / 1000).toFixed(1) + ' s') + '</td><td>' + r.cohortSize + '</td><td>' + n(r.included, 0) + '</td><td>' + n(r.metrics.loss) + '</td><td>' + n(r.metrics.learningRate) + '</td><td>' + n(r.metrics.dpEpsilon) + '</td><td class="reason">' + esc(r.reason || '') + '</td><td>' + link + '</td></tr>';
    }).join('');
    $('chart-grid').innerHTML = FedclrCharts.roundCharts(page.items).map(function (c) { return '<figure data-chart="' + c.id + '" style="margin:0">' + c.svg + '</figure>'; }).join('');
  }

  var LOGGED = { 'round-started': 1, 'round-completed': 1, 'round-failed': 1, 'round-evaluated': 1, 'update-rejected': 1, participant: 1 };
  function logLine(type, d) {
    switch (type) {
      case 'round-started': return 'round ' + d.roundId + ' started: cohort ' + d.cohortSize + ', quorum ' + d.required;
      case 'round-completed': return 'round ' + d.roundId + ' completed in ' + (d.durationMs / 1000).toFixed(1) + ' s with ' + d.included + ' included';
      case 'round-evaluated': return 'round ' + d.roundId + ' evaluated: linear probe ' + n(d.linearProbe) + ', kNN ' + n(d.knn);
      case 'round-failed': return 'round ' + d.roundId + ' ' + d.status + ': ' + (d.reason || 'no reason');
      case 'update-rejected': return 'round ' + d.roundId + ': update of ' + d.agentId + ' rejected (' + d.reason + '): ' + d.message;
      case 'participant': return 'round ' + d.roundId + ': ' + d.agentId + ' ' + d.status + (d.reason ? ': ' + d.reason : '');
    }
    return type;
  }
  function addLog(id, type, d) {
    if (state.seen[id]) return; // a replay after a reconnect
    state.seen[id] = true;
    var bad = type === 'round-failed' || type === 'update-rejected' || type === 'participant';
    var li = document.createElement('li');
    li.className = bad ? 'bad' : '';
    li.dataset.type = type;
    li.textContent = time(d.at) + '  ' + logLine(type, d);
    var ol = $('event-log');
    ol.insertBefore(li, ol.firstChild);
    while (ol.children.length > 500) ol.removeChild(ol.lastChild);
  }

  // ---- data --------------------------------------------------------------------------------
  // At most one refresh per MIN_GAP_MS (and one in flight): a round's many events cost the
  // coordinator one refetch, and a page stays far below the read routes' rate limit
  // (4 requests per full refresh: at most 160 a minute). The history (rounds table and charts,
  // most of the page's drawing and of its requests' cost) at most once per FULL_GAP_MS: rounds
  // shorter than that are drawn a few at a time, longer ones as soon as they end.
  var MIN_GAP_MS = 1500, FULL_GAP_MS = 3000;
  var MAX_ROUNDS = 500, RECENT_ROUNDS = 20;
  /** `recent` (the newest rounds, newest first) over `old`: by round id, newest first, at most MAX_ROUNDS. */
  function mergeRounds(old, recent) {
    if (!old) return recent;
    var byId = {};
    old.items.forEach(function (r) { byId[r.roundId] = r; });
    recent.items.forEach(function (r) { byId[r.roundId] = r; });
    var items = Object.keys(byId).map(function (k) { return byId[k]; });
    items.sort(function (a, b) { return b.roundId - a.roundId; });
    return { items: items.slice(0, MAX_ROUNDS), total: recent.total, limit: MAX_ROUNDS, offset: 0 };
  }
  var inflight = null, timer = null, want = null, lastStart = 0, lastFull = 0;
  function refresh(all) {
    want = want === true || all ? true : want || 'light';
    if (inflight || timer) return;
    timer = setTimeout(run, Math.max(0, lastStart + MIN_GAP_MS - Date.now()));
  }
  function run() {
    timer = null;
    // A full refresh asked for too soon after the last one: a light one now, the full one kept for later.
    var all = want === true && Date.now() - lastFull >= FULL_GAP_MS;
    want = want === true && !all ? true : null;
    lastStart = Date.now();
    if (all) lastFull = lastStart;
    var t0 = performance.now();
    var jobs = [api('/api/status'), api('/api/agents')];
    // The whole history once, then only the newest rounds: older rows no longer change (an
    // evaluation lands within a few rounds), and refetching 500 rows per round costs the
    // coordinator's event loop more than the page is worth on short rounds.
    var roundsPath = state.rounds ? '/api/rounds?limit=' + RECENT_ROUNDS : '/api/rounds?limit=' + MAX_ROUNDS;
    if (all) jobs.push(apiIfChanged(roundsPath), apiIfChanged('/api/checkpoints'), state.run ? Promise.resolve(state.run) : api('/api/run'));
    inflight = Promise.all(jobs).then(function (res) {
      state.status = res[0];
      state.agents = res[1];
      var historyChanged = all && (res[2].changed || res[3].changed);
      if (all) {
        if (res[2].changed) state.rounds = mergeRounds(state.rounds, res[2].body);
        state.checkpoints = res[3].body;
        state.run = res[4];
      }
      renderSummary();
      renderStage();
      renderAgents();
      if (historyChanged) renderRounds();
      stats.loads++;
      stats.lastRenderMs = performance.now() - t0;
      document.body.dataset.loads = String(stats.loads);
      document.body.dataset.completedRounds = String(state.status.completedRounds);
    }).catch(function (err) {
      console.error('dashboard refresh failed', err);
      // A failed full refresh is retried with the next one.
      if (all && err.message !== 'unauthorized') { want = true; lastFull = 0; }
    }).then(function () {
      inflight = null;
      if (want) refresh(want === true);
    });
  }

  // Server-sent events through fetch (the token travels in a header, not in the URL).
  function connect() {
    fetch('/api/events', { headers: headers(), cache: 'no-store' }).then(function (res) {
      if (res.status === 401) { askToken(); throw new Error('unauthorized'); }
      if (!res.ok || !res.body) throw new Error('events: HTTP ' + res.status);
      $('live').className = 'pill on';
      $('live').textContent = 'live';
      var reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      var buf = '';
      var pump = function () {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw new Error('the event stream ended');
          buf += chunk.value;
          var parts = buf.split('\n\n');
          buf = parts.pop();
          parts.forEach(onFrame);
          return pump();
        });
      };
      return pump();
    }).catch(function (err) {
      $('live').className = 'pill off';
      $('live').textContent = 'reconnecting';
      if (err.message !== 'unauthorized') { console.warn('event stream:', err.message); setTimeout(connect, 2000); }
    });
  }
  function onFrame(text) {
    var id = null, type = 'message', data = null;
    text.split('\n').forEach(function (line) {
      if (line.indexOf('id: ') === 0) id = line.slice(4);
      else if (line.indexOf('event: ') === 0) type = line.slice(7);
      else if (line.indexOf('data: ') === 0) data = JSON.parse(line.slice(6));
    });
    if (data === null) return;
    stats.events++;
    if (LOGGED[type]) addLog(id, type, data);
    refresh(type === 'round-completed' || type === 'round-failed' || type === 'round-started' || type === 'round-evaluated');
  }

  refresh(true);
  connect();
  // Agents' last seen and the deadline countdown move without events.
  setInterval(function () { if (Date.now() - lastStart > 4000) refresh(false); }, 5000);
})();
