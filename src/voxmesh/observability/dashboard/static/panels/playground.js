// The playground: text -> speech (model, voice, emotion, format) into an <audio> player, with
// the answer's Server-Timing stages and request id; text -> translation.
import { esc } from './format.js';

const EMOTIONS = ['neutral', 'happy', 'sad', 'angry', 'calm'];
const FORMATS = ['wav', 'mp3', 'opus', 'flac'];

function options(values, selected) {
  return values.map((v) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(v)}</option>`).join('');
}

export async function init(el, getJSON, apiFetch) {
  el.innerHTML = `<form id="tts-form">
      <select name="model" aria-label="model"></select><select name="voice" aria-label="voice"></select>
      <select name="emotion" aria-label="emotion">${options(EMOTIONS, 'neutral')}</select>
      <select name="format" aria-label="format">${options(FORMATS, 'wav')}</select>
      <button type="submit">Speak</button>
      <textarea name="input" aria-label="text to speak">Hello from the voxmesh dashboard.</textarea>
    </form>
    <audio id="tts-audio" controls></audio>
    <div id="tts-info" class="muted"></div>
    <form id="mt-form">
      <select name="model" aria-label="translation model"></select>
      <input name="source" value="auto" size="5" aria-label="source language">→
      <input name="target" value="zh" size="5" aria-label="target language">
      <button type="submit">Translate</button>
      <textarea name="input" aria-label="text to translate">Good morning, how are you?</textarea>
    </form>
    <div id="mt-out"></div>`;
  const tts = el.querySelector('#tts-form');
  const mt = el.querySelector('#mt-form');
  const models = (await getJSON('/v1/models').catch(() => null))?.data || [];
  const speech = models.filter((m) => m.kind === 'tts').map((m) => m.id);
  const translation = models.filter((m) => m.kind === 'mt' || m.kind === 'chat').map((m) => m.id);
  tts.model.innerHTML = options(speech, speech[0]);
  mt.model.innerHTML = translation.length ? options(translation, translation[0]) : '<option value="">no translation model</option>';
  mt.querySelector('button').disabled = !translation.length;

  async function loadVoices() {
    const v = await getJSON(`/v1/audio/voices?model=${encodeURIComponent(tts.model.value)}`).catch(() => null);
    const ids = (v?.voices || []).map((x) => x.id);
    tts.voice.innerHTML = options(ids.length ? ids : ['default'], ids[0]);
  }
  tts.model.addEventListener('change', loadVoices);
  if (speech.length) await loadVoices();

  tts.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const info = el.querySelector('#tts-info');
    const audio = el.querySelector('#tts-audio');
    info.textContent = 'synthesizing…';
    const body = { model: tts.model.value, voice: tts.voice.value, input: tts.input.value,
      emotion: tts.emotion.value, response_format: tts.format.value };
    const r = await apiFetch('/v1/audio/speech', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) {
      const err = await r.json().catch(() => ({ error: { message: `HTTP ${r.status}` } }));
      info.innerHTML = `<span class="error">${esc(err.error?.message)}</span>`;
      return;
    }
    const blob = await r.blob();
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(blob);
    info.innerHTML = `${blob.size} bytes · request id <code class="request-id">${esc(r.headers.get('X-Request-Id') || '–')}</code>
      · Server-Timing <code class="server-timing">${esc(r.headers.get('Server-Timing') || '–')}</code>`;
    audio.play().catch(() => {});  // autoplay may be refused: the controls are there
  });

  mt.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = el.querySelector('#mt-out');
    out.textContent = 'translating…';
    const body = { model: mt.model.value, input: mt.input.value, source: mt.source.value, target: mt.target.value };
    const r = await apiFetch('/v1/translations', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    out.innerHTML = r.ok ? `<p class="translation">${esc((data.translations || []).join(" "))}</p>`
      : `<span class="error">${esc(data.error?.message || `HTTP ${r.status}`)}</span>`;
  });
}
