// 「印刷する」 on the print view of 医療費通知 (health_expenses_print.html): the button is
// hidden in the HTML (without script the page says to print from the browser's menu); this
// shows it and opens the browser's print dialog on a press.
'use strict';
for (const button of document.querySelectorAll('button[data-print]')) {
  button.addEventListener('click', () => window.print());
  button.hidden = false;
}
