import { Usersd } from '/client/usersd.js';

const usersd = new Usersd();                   // this page's origin, the session cookie
const list = document.querySelector('#contacts');
const contacts = usersd.presence({ ids: list.dataset.ids.split(',').map(Number) });
contacts.onChange(() => list.replaceChildren(...[...contacts.users.values()].map((u) => {
  const li = document.createElement('li');
  li.textContent = `${u.username}: ${u.online_status}`;
  return li;
})));
usersd.keepOnline();                           // heartbeats while this tab is visible
