(function(){
  // Thumbnails come from the JSON block only for the groups of the page shown, so the
  // browser decodes one page of them. Filters and sort reorder the group cards; #page=N
  // opens page N.
  var thumbs = JSON.parse(document.getElementById('thumbs').textContent);
  document.querySelectorAll('#partial img[data-thumb]').forEach(function(img){
    img.src = thumbs[img.dataset.thumb];
  });
  lightbox();
  var list = document.getElementById('group-list');
  if(!list){return;}
  var cards = Array.prototype.slice.call(list.querySelectorAll('article.group'));
  var pageSize = Math.max(1, Number(list.dataset.pageSize) || 50);
  var current = 0, visible = cards;
  var slider = document.getElementById('min-similarity');
  var sortBy = document.getElementById('sort');

  function checkedKinds(){
    var out = {};
    document.querySelectorAll('#controls input[name=evidence]').forEach(function(box){
      if(box.checked){out[box.value] = true;}
    });
    return out;
  }
  function apply(){
    var kinds = checkedKinds();
    var least = slider ? Number(slider.value) / 100 : 0;
    var key = sortBy ? sortBy.value : 'size';
    visible = cards.filter(function(card){
      return kinds[card.dataset.evidence] && Number(card.dataset.similarity) >= least - 1e-9;
    });
    visible.sort(function(a, b){
      var by = key === 'wasted' ? Number(b.dataset.wasted) - Number(a.dataset.wasted)
                                : Number(b.dataset.size) - Number(a.dataset.size);
      return by || Number(a.dataset.order) - Number(b.dataset.order);
    });
    visible.forEach(function(card){list.appendChild(card);});
    var count = document.getElementById('shown-count');
    if(count){count.textContent = visible.length + ' of ' + cards.length + ' groups';}
    var none = document.getElementById('none-match');
    if(none){none.hidden = visible.length > 0;}
    if(slider){document.getElementById('similarity-value').textContent = slider.value + '%';}
  }
  function pages(){return Math.max(1, Math.ceil(visible.length / pageSize));}
  function show(n){
    current = Math.max(0, Math.min(pages() - 1, n));
    var first = current * pageSize, shown = {};
    visible.slice(first, first + pageSize).forEach(function(card){shown[card.id] = true;});
    cards.forEach(function(card){
      card.hidden = !shown[card.id];
      if(card.hidden){return;}
      card.querySelectorAll('img[data-thumb]').forEach(function(img){
        if(!img.getAttribute('src')){img.src = thumbs[img.dataset.thumb];}
      });
    });
    document.querySelectorAll('.page-number').forEach(function(label){
      label.textContent = 'page ' + (current + 1) + ' of ' + pages();
    });
    document.querySelectorAll('.pager button').forEach(function(button){
      var step = Number(button.dataset.step);
      button.disabled = (step < 0 && current === 0) || (step > 0 && current === pages() - 1);
    });
  }
  document.querySelectorAll('.pager button').forEach(function(button){
    button.addEventListener('click', function(e){
      show(current + Number(e.currentTarget.dataset.step));
      if(history.replaceState){history.replaceState(null, '', '#page=' + (current + 1));}
    });
  });
  var controls = document.getElementById('controls');
  if(controls){
    controls.addEventListener('input', function(){apply(); show(0);});
    controls.addEventListener('submit', function(e){e.preventDefault();});
  }

  apply();
  var asked = /page=(\d+)/.exec(location.hash);
  show(asked ? Number(asked[1]) - 1 : 0);

  function lightbox(){
    // Click a thumbnail: the lightbox shows it at once, then the original file in its place
    // when the browser lets a page opened from a file load it (else the thumbnail stays).
    var box = document.getElementById('lightbox');
    var big = document.getElementById('lightbox-img');
    var caption = document.getElementById('lightbox-caption');
    var opened = 0;
    function close(){box.hidden = true; big.removeAttribute('src'); opened++;}
    document.addEventListener('click', function(e){
      var img = e.target.closest('img[data-thumb]');
      if(!img){return;}
      var card = img.closest('.file');
      var ticket = ++opened;
      big.src = img.src;
      big.alt = img.alt;
      var path = card.querySelector('.path').textContent;
      caption.textContent = path + ' (thumbnail)';
      box.hidden = false;
      var link = card.querySelector('a.open');
      var url = link ? link.href : '';
      if(url){
        var original = new Image();
        original.onload = function(){
          if(ticket !== opened){return;}
          big.src = original.src;
          caption.textContent = path + ' (' + original.naturalWidth + '\u00d7' +
                                original.naturalHeight + ', the original file)';
        };
        original.src = url;
      }
    });
    box.addEventListener('click', close);
    document.addEventListener('keydown', function(e){
      if(e.key === 'Escape' && !box.hidden){close();}
    });
  }
})();
