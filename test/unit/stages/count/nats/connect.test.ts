import t from 'tap';
import { natsOptions } from '../../../../../stages/count/nats/index.ts';

const base = { nats: '', natsCreds: '', natsCa: '', natsCert: '', natsKey: '' };

t.test('natsOptions() takes a user and password, or a token, from the URL and keeps them out of the server list', async (t) => {
  const withUser = natsOptions({ ...base, nats: 'nats://lmpipe:s%40cret@10.0.0.5:4223' });
  t.same(withUser.servers, ['10.0.0.5:4223']);
  t.equal(withUser.user, 'lmpipe');
  t.equal(withUser.pass, 's@cret');
  const withToken = natsOptions({ ...base, nats: 'nats://t0ken@host' });
  t.same(withToken.servers, ['host:4222']);
  t.equal(withToken.token, 't0ken');
  t.equal(withToken.tls, undefined);
});

t.test('natsOptions() turns on TLS for tls:// URLs, with the CA and client certificate files', async (t) => {
  const options = natsOptions({ ...base, nats: 'tls://a:4222,tls://b:4222', natsCa: 'ca.pem', natsCert: 'c.pem', natsKey: 'k.pem' });
  t.same(options.servers, ['a:4222', 'b:4222']);
  t.same(options.tls, { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'k.pem' });
});

t.test('natsOptions() rejects other schemes and empty URLs, naming the flag', async (t) => {
  t.throws(() => natsOptions({ ...base, nats: 'http://host:4222' }), /Expected `--nats` to start with nats:\/\/ or tls:\/\//);
  t.throws(() => natsOptions({ ...base, nats: ' , ' }), /Expected `--nats` to name a server/);
});
