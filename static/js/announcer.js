// Announces calls on the TV board: a chime, then speech in each configured language.
// Announcements queue: a new call never cuts off the one being spoken.
(function () {
  "use strict";
  var SPEECH_TIMEOUT_MS = 12000;   // a voice that never reports its end must not block the queue
  var AUTOPLAY_WAIT_MS = 1000;     // a blocked AudioContext's resume() never settles: stop waiting
  var PHRASES = {
    en: function (token, cabin) { return "Token " + spell(token) + ", please go to cabin " + cabin + "."; },
    hi: function (token, cabin) { return "टोकन " + spell(token) + ", कृपया केबिन " + cabin + " में जाएँ।"; }
  };
  var LOCALES = { en: "en-IN", hi: "hi-IN" };

  // "CARD-045" -> "CARD 0 4 5": numbers read digit by digit are clearer in a noisy hall.
  function spell(token) { return token.replace("-", " ").replace(/(\d)/g, " $1").replace(/\s+/g, " ").trim(); }

  // onBlocked(true) when the browser refuses sound (autoplay policy), onBlocked(false) once it plays.
  function Announcer(languages, onShow, onBlocked) {
    this.languages = languages.length ? languages : ["en"];
    this.onShow = onShow || function () {};
    this.onBlocked = onBlocked || function () {};
    this.queue = [];
    this.busy = false;
    this.enabled = false;
  }

  // Sound without anybody touching the screen: allowed by a kiosk browser started with
  // --autoplay-policy=no-user-gesture-required (docs/operations.md); done(true) if it plays.
  Announcer.prototype.tryAutoplay = function (done) {
    var self = this, settled = false;
    try { this.audio = this.audio || new (window.AudioContext || window.webkitAudioContext)(); }
    catch (e) { this.audio = null; }
    function settle() {
      if (settled) { return; }
      settled = true;
      var playing = !!self.audio && self.audio.state === "running";
      self.enabled = playing;
      self.onBlocked(!playing);
      done(playing);
    }
    if (!this.audio) { settle(); return; }
    this.audio.resume().then(settle, settle);
    setTimeout(settle, AUTOPLAY_WAIT_MS);
  };

  // After a tap or click: the browser allows sound from now on.
  Announcer.prototype.enable = function () {
    var self = this;
    this.enabled = true;
    try {
      this.audio = this.audio || new (window.AudioContext || window.webkitAudioContext)();
      this.audio.resume().then(function () { self.onBlocked(self.audio.state !== "running"); });
    } catch (e) { this.audio = null; }
  };

  Announcer.prototype.announce = function (token, cabin) {
    this.queue.push({ token: token, cabin: cabin });
    this.next();
  };

  Announcer.prototype.next = function () {
    if (this.busy || !this.queue.length) { return; }
    var item = this.queue.shift();
    var self = this;
    this.busy = true;
    this.onShow(item, true);
    var steps = [function (done) { self.chime(done); }];
    this.languages.forEach(function (lang) {
      if (PHRASES[lang]) { steps.push(function (done) { self.say(PHRASES[lang](item.token, item.cabin), LOCALES[lang], done); }); }
    });
    (function run(i) {
      if (i >= steps.length) { self.busy = false; self.onShow(item, false); self.next(); return; }
      steps[i](function () { run(i + 1); });
    })(0);
  };

  Announcer.prototype.chime = function (done) {
    if (!this.enabled || !this.audio) { setTimeout(done, 300); return; }
    try {
      var ctx = this.audio, t = ctx.currentTime;
      [660, 880].forEach(function (freq, i) {
        var osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.frequency.value = freq; osc.connect(gain); gain.connect(ctx.destination);
        gain.gain.setValueAtTime(0.0001, t + i * 0.35);
        gain.gain.exponentialRampToValueAtTime(0.4, t + i * 0.35 + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.35 + 0.6);
        osc.start(t + i * 0.35); osc.stop(t + i * 0.35 + 0.65);
      });
    } catch (e) { /* no audio: the text on screen still shows */ }
    setTimeout(done, 1000);
  };

  Announcer.prototype.say = function (text, locale, done) {
    var synth = window.speechSynthesis;
    if (!this.enabled || !synth || typeof SpeechSynthesisUtterance === "undefined") { setTimeout(done, 1500); return; }
    var finished = false;
    function finish() { if (!finished) { finished = true; clearTimeout(timer); done(); } }
    var timer = setTimeout(finish, SPEECH_TIMEOUT_MS);
    try {
      var utterance = new SpeechSynthesisUtterance(text);
      utterance.lang = locale;
      var voices = synth.getVoices() || [];
      for (var i = 0; i < voices.length; i++) {
        if (voices[i].lang && voices[i].lang.replace("_", "-").indexOf(locale.slice(0, 2)) === 0) { utterance.voice = voices[i]; break; }
      }
      utterance.rate = 0.9;
      var self = this;
      utterance.onend = finish;
      utterance.onerror = function (event) {
        if (event && event.error === "not-allowed") { self.onBlocked(true); }
        finish();
      };
      synth.speak(utterance);
    } catch (e) { finish(); }
  };

  window.OpdAnnouncer = Announcer;
})();
